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
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from movseg_ros.paths import config_file

IMAGE_TOPIC = "/movseg_bench/image"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rate", type=float, default=30.0, help="camera frames per second (default 30)")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of streaming (default 20; 300 for the memory check)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--params-file", type=Path, default=None, help="node parameters (default: the installed segment.yaml)")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID for this run (default: random 1..200)")
    p.add_argument("--no-shm-profile", action="store_true", help="do not set FASTDDS_DEFAULT_PROFILES_FILE")
    p.add_argument("--json", type=Path, default=None, help="write every number (and the samples) here")
    p.add_argument("--plot", type=Path, default=None, help="write a latency histogram and RSS-over-time PNG here")


@dataclass
class BenchResult:
    """What one run measured; latencies in ms, memory in MB, rates in Hz."""

    rate: float
    duration_s: float
    width: int
    height: int
    published: int = 0
    outputs: int = 0
    unanswered: int = 0  # published frames with no /movseg/instances (queue drops + transport loss)
    output_rate: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)
    node_diagnostics: dict[str, str] = field(default_factory=dict)
    node_exit_code: int | None = None
    latencies: list[float] = field(default_factory=list)
    rss_samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, MB)


def bench_env(domain_id: int, shm_profile: bool) -> dict[str, str]:
    """This run's ROS environment: private domain, localhost discovery, the SHM profile."""
    env = {"ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    if shm_profile:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(config_file("fastdds_shm.xml"))
    return env


def start_node(env: dict[str, str], params_file: Path, log_path: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "movseg_ros.ros.segment_node", "--ros-args", "--params-file", str(params_file),
           "-r", f"image:={IMAGE_TOPIC}", "-p", "diagnostics_period:=1.0"]
    log = open(log_path, "w")  # noqa: SIM115 - owned by the child for its lifetime
    return subprocess.Popen(cmd, env={**os.environ, **env, "PYTHONUNBUFFERED": "1"}, stdout=log, stderr=subprocess.STDOUT)


class RssSampler:
    """Samples a process's resident memory once a second in a thread."""

    def __init__(self, pid: int, period: float = 1.0) -> None:
        import psutil

        self._proc = psutil.Process(pid)
        self._period = period
        self._stop = threading.Event()
        self.samples: list[tuple[float, float]] = []
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic() - self._t0, self._proc.memory_info().rss / 2**20))
            except Exception:  # noqa: BLE001 - the process ended
                return
            self._stop.wait(self._period)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2.0)


def rss_summary(samples: list[tuple[float, float]]) -> dict[str, float]:
    """Start, end and max RSS, and the least-squares slope over the second half (MB/min)."""
    if not samples:
        return {}
    t = np.array([s[0] for s in samples])
    mb = np.array([s[1] for s in samples])
    half = t >= t[-1] / 2
    slope = float(np.polyfit(t[half], mb[half], 1)[0] * 60.0) if half.sum() >= 3 else float("nan")
    return {"start": float(mb[0]), "end": float(mb[-1]), "max": float(mb.max()), "slope_second_half_mb_per_min": slope}


def stream(args: argparse.Namespace, proc: subprocess.Popen, result: BenchResult) -> None:
    """Publish the scene at the rate for the duration, collecting outputs and RSS."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from movseg_ros.ros.image_codec import header_of, stamp_ns_of
    from movseg_ros.scene import SceneConfig, make_scene

    scene = [f.tobytes() for f in make_scene(SceneConfig(width=args.width, height=args.height)).frames]
    frames = scene + scene[-2:0:-1]  # played back and forth: a loop that never jumps
    sent: dict[int, float] = {}
    received: dict[int, float] = {}
    lock = threading.Lock()

    def on_instances(msg: Image) -> None:
        now = time.monotonic()
        with lock:
            received.setdefault(stamp_ns_of(msg.header), now)

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for s in msg.status:
            if s.name.startswith("movseg"):
                result.node_diagnostics = {kv.key: kv.value for kv in s.values}

    node = rclpy.create_node("movseg_bench")
    camera_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
    output_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
    camera = node.create_publisher(Image, IMAGE_TOPIC, camera_qos)
    node.create_subscription(Image, "/movseg/instances", on_instances, output_qos)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, output_qos)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 60.0
        while (camera.get_subscription_count() == 0 or node.count_publishers("/movseg/instances") == 0):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the node did not come up (see its log)")
            time.sleep(0.05)
        time.sleep(0.5)
        sampler = RssSampler(proc.pid)
        sampler.start()
        period = 1.0 / args.rate
        n = int(round(args.duration * args.rate))
        t0 = time.monotonic()
        for i in range(n):
            stamp = time.time_ns()
            msg = Image(header=header_of(stamp, "camera"), height=args.height, width=args.width, encoding="rgb8",
                        is_bigendian=0, step=3 * args.width, data=frames[i % len(frames)])
            with lock:
                sent[stamp] = time.monotonic()
            camera.publish(msg)
            time.sleep(max(0.0, t0 + (i + 1) * period - time.monotonic()))
            if proc.poll() is not None:
                raise RuntimeError(f"the node exited with code {proc.returncode} during the run")
        time.sleep(2.0)  # the last outputs
        sampler.stop()
        with lock:
            lat = [(received[s] - t) * 1e3 for s, t in sent.items() if s in received]
            times = sorted(received[s] for s in sent if s in received)
        result.published, result.outputs = len(sent), len(lat)
        result.unanswered = len(sent) - len(lat)
        result.output_rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
        if lat:
            p = np.percentile(lat, [50, 95, 99])
            result.latency_ms = {"p50": float(p[0]), "p95": float(p[1]), "p99": float(p[2]),
                                 "mean": float(np.mean(lat)), "max": float(np.max(lat))}
        result.latencies = lat
        result.rss_samples = sampler.samples
        result.rss_mb = rss_summary(sampler.samples)
    finally:
        executor.shutdown(timeout_sec=2.0)
        spinner.join(3.0)
        node.destroy_node()


def report(r: BenchResult) -> str:
    lat, rss, diag = r.latency_ms, r.rss_mb, r.node_diagnostics
    lines = [
        f"movseg bench node: {r.width}x{r.height} rgb8 at {r.rate:g} Hz for {r.duration_s:g} s",
        f"  frames published      {r.published}",
        f"  outputs received      {r.outputs}   (no output: {r.unanswered})",
        f"  output rate           {r.output_rate:.2f} Hz",
    ]
    if lat:
        lines.append(f"  latency camera->instances  p50 {lat['p50']:.1f} ms   p95 {lat['p95']:.1f} ms   p99 {lat['p99']:.1f} ms")
    if diag:
        lines.append(f"  node: received {diag.get('frames received')}  processed {diag.get('frames processed')}  "
                     f"dropped {diag.get('frames dropped')}  bad {diag.get('frames bad')}  "
                     f"latency p50 {diag.get('latency p50 (ms)')} ms (arrival->publish)")
    if rss:
        lines.append(f"  node RSS   start {rss['start']:.1f} MB   end {rss['end']:.1f} MB   max {rss['max']:.1f} MB   "
                     f"slope (2nd half) {rss['slope_second_half_mb_per_min']:+.2f} MB/min")
    lines.append(f"  node exit code        {r.node_exit_code}")
    return "\n".join(lines)


def plot(r: BenchResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    import rclpy

    domain = args.domain_id if args.domain_id is not None else random.SystemRandom().randint(1, 200)
    env = bench_env(domain, not args.no_shm_profile)
    os.environ.update(env)  # this process's participant must match the node's transports and domain
    params = args.params_file or config_file("segment.yaml")
    result = BenchResult(rate=args.rate, duration_s=args.duration, width=args.width, height=args.height)
    log_path = Path(tempfile.mkstemp(prefix="movseg-bench-node-", suffix=".log")[1])
    proc = start_node(env, params, log_path)
    rclpy.init()
    code = 0
    try:
        stream(args, proc, result)
    except (RuntimeError, KeyboardInterrupt) as e:
        print(f"movseg bench node: {e}; node log: {log_path}", file=sys.stderr)
        code = 1
    finally:
        rclpy.try_shutdown()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        result.node_exit_code = proc.returncode
    print(report(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(result), indent=2))
    if args.plot:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot(result, args.plot)
    if code == 0 and result.node_exit_code != 0:
        print(f"node exited with {result.node_exit_code}; log: {log_path}", file=sys.stderr)
        code = 1
    if code == 0:
        log_path.unlink(missing_ok=True)
    return code
