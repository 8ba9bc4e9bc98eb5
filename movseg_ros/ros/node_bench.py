"""movseg bench node: camera-to-/movseg/instances latency, output rate, drops and memory of the real node.

The node runs as its own process (shared-memory Fast DDS profile, a private ROS domain,
localhost discovery); this process publishes the built-in scene (played back and forth, so
the stream stays continuous) at a fixed rate with wall-clock stamps, matches each
output to its input by header stamp, and samples the node's RSS every second. rclpy is
imported only when the bench runs, so `movseg --help` works without ROS.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from movseg_ros.bench.rss_sampler import RssSampler
from movseg_ros.plots import pyplot, save_figure


IMAGE_TOPIC = "/movseg_bench/image"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", type=float, default=30.0, help="camera frames per second (default 30)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of streaming (default 20; 300 for the memory check)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--params-file", type=Path, default=None, help="node parameters (default: the installed segment.yaml)")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID for this run (default: random 1..200)")
    p.add_argument("--no-shm-profile", action="store_true", help="do not set FASTDDS_DEFAULT_PROFILES_FILE")
    p.add_argument("--depth", action="store_true", help="also send the scene's depth (32FC1) and CameraInfo with each "
                   "frame, with depth.enabled on: the 3D outputs are computed (and a subscriber takes them)")
    p.add_argument("--json", type=Path, default=None, help="write every number (and the samples) here")
    p.add_argument("--plot", type=Path, default=None, help="write a latency histogram and RSS-over-time PNG here")


@dataclass
class BenchResult:
    """What one run measured; latencies in ms, memory in MB, rates in Hz."""

    rate: float
    duration_s: float
    width: int
    height: int
    depth: bool = False
    published: int = 0
    outputs: int = 0
    unanswered: int = 0  # published frames with no /movseg/instances (queue drops + transport loss)
    output_rate: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # the node's CPU while streaming: cores busy, ms an output
    node_diagnostics: dict[str, str] = field(default_factory=dict)
    node_exit_code: int | None = None
    latencies: list[float] = field(default_factory=list)
    rss_samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, MB)


def rss_summary(samples: list[tuple[float, float]]) -> dict[str, float]:
    """Start, end and max RSS, and the least-squares slope over the second half (MB/min)."""
    if not samples:
        return {}
    t = np.array([s[0] for s in samples])
    mb = np.array([s[1] for s in samples])
    half = t >= t[-1] / 2
    slope = float(np.polyfit(t[half], mb[half], 1)[0] * 60.0) if half.sum() >= 3 else float("nan")
    return {"start": float(mb[0]), "end": float(mb[-1]), "max": float(mb.max()), "slope_second_half_mb_per_min": slope}


def stream(args: argparse.Namespace, node: Any, result: BenchResult) -> None:
    """Publish the scene at the rate for the duration, collecting outputs and RSS."""
    from movseg_ros.ros.node_session import SENSOR, StreamClient
    from movseg_ros.scene import SceneConfig, make_scene

    made = make_scene(SceneConfig(width=args.width, height=args.height))
    order = list(range(len(made.frames))) + list(range(len(made.frames) - 2, 0, -1))  # back and forth: never jumps
    client = StreamClient(IMAGE_TOPIC, "movseg_bench", camera_qos=SENSOR, keep_messages=False, with_3d=args.depth)
    sent: dict[int, float] = {}
    try:
        client.wait_connected(60.0, node)
        sampler = RssSampler(node.pid, period=1.0)
        sampler.start()
        period = 1.0 / args.rate
        n = int(round(args.duration * args.rate))
        cpu0 = sampler.cpu_seconds()
        t0 = time.monotonic()
        for i in range(n):
            stamp = time.time_ns()
            k = order[i % len(order)]
            if args.depth:
                client.publish_depth(made.depth[k], made.intrinsics, stamp)
            sent[stamp] = time.monotonic()
            client.publish(made.frames[k], stamp)
            time.sleep(max(0.0, t0 + (i + 1) * period - time.monotonic()))
            if not node.alive():
                raise RuntimeError(f"the node exited with code {node.proc.returncode} during the run")
        streamed, used = time.monotonic() - t0, sampler.cpu_seconds() - cpu0
        time.sleep(2.0)  # the last outputs
        sampler.stop()
        with client.lock:
            received = {s: t[0] for s, t in client.got.instance_times.items()}
            if client.got.diagnostics:
                result.node_diagnostics = client.got.diagnostics[-1]
        lat = [(received[s] - t) * 1e3 for s, t in sent.items() if s in received]
        times = sorted(received[s] for s in sent if s in received)
        result.published, result.outputs = len(sent), len(lat)
        result.unanswered = len(sent) - len(lat)
        result.output_rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
        if lat:
            p = np.percentile(lat, [50, 95, 99])
            result.latency_ms = {"p50": float(p[0]), "p95": float(p[1]), "p99": float(p[2]),
                                 "mean": float(np.mean(lat)), "max": float(np.max(lat))}
        result.cpu = {"cores": used / streamed, "machine_cores": float(os.cpu_count() or 0),
                      "ms_per_output": used * 1e3 / len(lat) if lat else float("nan")}
        result.latencies = lat
        result.rss_samples = sampler.samples
        result.rss_mb = rss_summary(sampler.samples)
    finally:
        client.close()


def report(r: BenchResult) -> str:
    lat, rss, diag = r.latency_ms, r.rss_mb, r.node_diagnostics
    lines = [
        f"movseg bench node: {r.width}x{r.height} rgb8{' + depth' if r.depth else ''} at {r.rate:g} Hz for {r.duration_s:g} s",
        f"  frames published      {r.published}",
        f"  outputs received      {r.outputs}   (no output: {r.unanswered})",
        f"  output rate           {r.output_rate:.2f} Hz",
    ]
    if lat:
        lines.append(f"  latency camera->instances  p50 {lat['p50']:.1f} ms   p95 {lat['p95']:.1f} ms   p99 {lat['p99']:.1f} ms")
    if diag:
        lines.append(f"  node: received {diag.get('frames received')}  processed {diag.get('frames processed')}  "
                     f"dropped {diag.get('frames dropped')}  bad {diag.get('frames bad')}  "
                     f"latency p50 {diag.get('output latency p50 (ms)')} ms (arrival->publish)")
    if r.cpu:
        lines.append(f"  node CPU              {r.cpu['cores']:.2f} cores busy of {r.cpu['machine_cores']:.0f} "
                     f"(publisher and node share them), {r.cpu['ms_per_output']:.1f} ms an output")
    if rss:
        lines.append(f"  node RSS   start {rss['start']:.1f} MB   end {rss['end']:.1f} MB   max {rss['max']:.1f} MB   "
                     f"slope (2nd half) {rss['slope_second_half_mb_per_min']:+.2f} MB/min")
    lines.append(f"  node exit code        {r.node_exit_code}")
    return "\n".join(lines)


def plot(r: BenchResult, path: Path) -> None:
    plt = pyplot()

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.hist(r.latencies, bins=50, color="tab:blue")
    a.set(title="camera -> /movseg/instances latency", xlabel="ms", ylabel="frames")
    for name, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
        if name in r.latency_ms:
            a.axvline(r.latency_ms[name], color="k", linestyle=style, label=f"{name} {r.latency_ms[name]:.1f} ms")
    a.legend()
    if r.rss_samples:
        t, mb = zip(*r.rss_samples)
        b.plot(t, mb, color="tab:red")
    b.set(title="node RSS", xlabel="s", ylabel="MB")
    save_figure(fig, path)


def run(args: argparse.Namespace) -> int:
    import rclpy

    from movseg_ros.ros.node_session import NodeProcess, init_rclpy, random_domain, ros_env

    env = ros_env(args.domain_id if args.domain_id is not None else random_domain(), not args.no_shm_profile)
    result = BenchResult(rate=args.rate, duration_s=args.duration, width=args.width, height=args.height, depth=args.depth)
    depth = ["-p", "depth.enabled:=true", "-r", f"camera_info:={IMAGE_TOPIC}/camera_info",
             "-r", f"depth/image:={IMAGE_TOPIC}/depth", "-r", f"depth/camera_info:={IMAGE_TOPIC}/depth/camera_info"]
    node = NodeProcess.start(env, args.params_file, remap=f"image:={IMAGE_TOPIC}",
                             extra=["-p", "diagnostics_period:=1.0", *(depth if args.depth else [])])
    init_rclpy(env)
    code = 0
    try:
        stream(args, node, result)
    except (RuntimeError, KeyboardInterrupt) as e:
        print(f"movseg bench node: {e}; node log: {node.log_path}", file=sys.stderr)
        code = 1
    finally:
        rclpy.try_shutdown()
        try:
            result.node_exit_code = node.stop(15.0)
        except RuntimeError as e:
            print(f"movseg bench node: {e}", file=sys.stderr)
            result.node_exit_code = node.proc.returncode
    print(report(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(result), indent=2))
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot(result, args.plot)
    if code == 0 and result.node_exit_code != 0:
        print(f"node exited with {result.node_exit_code}; log: {node.log_path}", file=sys.stderr)
        code = 1
    node.close(keep_log=code != 0)
    return code
