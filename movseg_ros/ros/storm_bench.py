"""movseg bench storm: the real node under hostile input; accounting, memory and responsiveness per storm.

Storms (ros/storm.py): `bomb` (100 KB PNGs that decode to 12000x9000, between valid frames),
`burst` (valid 640x480 frames at 200 Hz), `mixed` (the fuzz test's mix of malformed messages with a
valid frame after every 20) and `max_size` (valid frames at the largest accepted size, 4096x4096).
The node runs in its own process; its RSS is sampled every 50 ms, and the target is that it stays
under twice the idle figure in every storm. `--seconds 300` makes it a soak.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from movseg_ros.plots import pyplot, save_figure

IMAGE_TOPIC = "/movseg_storm/image"
STORMS = ("bomb", "burst", "mixed", "max_size")
RSS_TARGET = 2.0  # max RSS over idle RSS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storms", default=",".join(STORMS), help=f"comma-separated, from {', '.join(STORMS)} (default: all)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each storm (default 10; 300 for a soak)")
    p.add_argument("--rate", type=float, default=200.0, help="messages per second in the bomb, burst and mixed storms")
    p.add_argument("--seed", type=int, default=20261205, help="seed of the mixed storm's messages")
    p.add_argument("--params-file", type=Path, default=None, help="node parameters (default: the installed segment.yaml)")
    p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID for this run (default: random 1..200)")
    p.add_argument("--json", type=Path, default=None, help="write every number (and the RSS samples) here")
    p.add_argument("--plot", type=Path, default=None, help="write node RSS over time, one panel a storm, as a PNG")


def storm_messages(name: str, seconds: float, rate: float, seed: int) -> tuple[Iterator, float]:
    """The probes of storm `name` for about `seconds`, and the rate to send them at."""
    from movseg_ros.ros import storm

    if name == "bomb":
        return storm.bomb_storm(max(1, int(seconds * rate / 2)), valid_every=1), rate
    if name == "burst":
        return storm.burst_storm(max(1, int(seconds * rate))), rate
    if name == "mixed":
        return storm.mixed_storm(seed, max(20, int(seconds * rate * 20 / 21))), rate
    if name == "max_size":
        return storm.max_size_storm(max(2, int(seconds * 2.0))), 2.0
    raise ValueError(f"unknown storm '{name}' (known: {', '.join(STORMS)})")


def report_line(r) -> str:
    """One storm in one line: what was sent, how the node counted it, memory, and whether it answers."""
    answer = f"{r.answer_s * 1e3:.0f} ms" if r.answer_s is not None else "none"
    return (f"{r.name:9s} sent {r.sent:6d}  received {r.received:6d} (lost in transport {r.lost})  "
            f"bad {r.bad:5d} of {r.sent_bad} malformed  dropped {r.dropped:5d}  processed {r.processed:5d}  "
            f"failed {r.failed:3d}  malformed not counted bad {r.miscounted}  accounted {'yes' if r.accounted else 'NO'}  "
            f"RSS idle {r.rss_idle_mb:.0f} MB max {r.rss_max_mb:.0f} MB = {r.rss_ratio:.2f}x  "
            f"valid frame after: {answer}  alive {'yes' if r.alive else 'NO'}")


def plot(reports: list, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, len(reports), figsize=(4.5 * len(reports), 3.6), squeeze=False)
    for ax, r in zip(axes[0], reports):
        if r.rss_samples:
            t, mb = zip(*r.rss_samples)
            ax.plot(t, mb, color="tab:red", label="RSS")
        ax.axhline(r.rss_idle_mb, color="k", linestyle=":", label="idle")
        ax.axhline(RSS_TARGET * r.rss_idle_mb, color="k", linestyle="--", label=f"{RSS_TARGET:g}x idle")
        ax.set(title=f"{r.name}: max {r.rss_ratio:.2f}x idle", xlabel="s", ylabel="node RSS (MB)")
        ax.legend(fontsize=8)
    save_figure(fig, path)


def run_storms(names: list[str], args: argparse.Namespace, node, progress: Callable[[str], None]) -> list:
    """Connect, warm the node up, then run each storm in turn; its reports."""
    from movseg_ros.ros import storm
    from movseg_ros.ros.node_session import StreamClient

    storm.png_bomb()
    client = StreamClient(IMAGE_TOPIC, "movseg_storm")
    stamps = itertools.count(time.time_ns(), 1_000_000)
    reports = []
    try:
        client.wait_connected(60.0, node)
        deadline = time.monotonic() + 10.0
        while client.camera_compressed.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        for i in range(5):  # warm up: the idle figure is the node after it has run
            stamp = next(stamps)
            client.publish(storm.valid(i).msg, stamp)
            client.wait_output(stamp, timeout=60.0)
        time.sleep(1.0)
        idle = storm.RssSampler(node.pid).now_mb()
        for name in names:
            probes, rate = storm_messages(name, args.seconds, args.rate, args.seed)
            progress(f"storm '{name}' ({args.seconds:g} s at {rate:g} Hz) ...")
            r = storm.run_storm(name, client, node, probes, rate, stamps, idle, settle_s=60.0)
            reports.append(r)
            progress(report_line(r))
            with client.lock:  # outputs are not kept across storms
                client.got.instances.clear()
                client.got.tracks.clear()
            if not r.alive:
                break
    finally:
        client.close()
    return reports


def run(args: argparse.Namespace) -> int:
    import rclpy

    from movseg_ros.ros.node_session import NodeProcess, init_rclpy, random_domain, ros_env

    names = [n.strip() for n in args.storms.split(",") if n.strip()]
    unknown = [n for n in names if n not in STORMS]
    if unknown or not names:
        print(f"movseg bench storm: unknown storm(s) {unknown} (known: {', '.join(STORMS)})", file=sys.stderr)
        return 2
    env = ros_env(args.domain_id if args.domain_id is not None else random_domain())
    node = NodeProcess.start(env, args.params_file, remap=f"image:={IMAGE_TOPIC}", extra=[
        "-p", "diagnostics_period:=0.2", "-p", "use_compressed:=true", "-r", f"image/compressed:={IMAGE_TOPIC}/compressed"])
    init_rclpy(env)
    code, reports = 0, []
    try:
        reports = run_storms(names, args, node, lambda line: print(line, flush=True))
    except (RuntimeError, TimeoutError, KeyboardInterrupt) as e:
        print(f"movseg bench storm: {e}; node log: {node.log_path}", file=sys.stderr)
        code = 1
    finally:
        rclpy.try_shutdown()
        try:
            exit_code = node.stop(15.0)
        except RuntimeError as e:
            print(f"movseg bench storm: {e}", file=sys.stderr)
            exit_code = node.proc.returncode
    within = all(r.alive and r.accounted and r.rss_ratio < RSS_TARGET for r in reports)
    print(f"\nmovseg bench storm: {len(reports)} storm(s); node exit code {exit_code}; "
          f"every storm alive, accounted and under {RSS_TARGET:g}x idle RSS: {'yes' if within else 'NO'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"seconds": args.seconds, "rate": args.rate, "seed": args.seed,
                                         "node_exit_code": exit_code, "rss_target": RSS_TARGET, "within_target": within,
                                         "storms": [dict(r.summary(), rss_samples=r.rss_samples) for r in reports]},
                                        indent=2))
    if args.plot and reports:
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot(reports, args.plot)
    if code == 0 and (exit_code != 0 or not within):
        code = 1
    node.close(keep_log=code != 0)
    return code
