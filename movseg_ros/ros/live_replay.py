"""Live replay: the real node, in its own process, is fed a bag's images at the recorded rate.

Everything the node publishes is recorded as it arrives (raw CDR, no re-encoding) into an
output bag; afterwards the node's own counters and the recorded outputs account for every
input frame, and the recorded /movseg/instances are scored against the bag's truth.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image, PointCloud2
from tqdm import tqdm

from movseg_ros.bags.reader import read_images, read_label_maps
from movseg_ros.bags.topics import INSTANCES_TOPIC, TRACKS_TOPIC
from movseg_ros.bags.writer import BagRecorder
from movseg_ros.overlay import contact_sheet, draw_overlay
from movseg_ros.replay.account import FrameAccount
from movseg_ros.replay.options import ReplayOptions
from movseg_ros.replay.outputs import as_rgb, open_replay, write_summary
from movseg_ros.evaluation.stamped import StampedScorer
from movseg_ros.replay.timing import Timing
from movseg_ros.ros.image_codec import header_of
from movseg_ros.ros.node_session import DEEP_RELIABLE, RELIABLE, NodeProcess, random_domain, ros_env, spin_in_thread
from movseg_ros.ros.tracks_msg import track_state_of, tracks_from_cloud

DIAGNOSTICS_TOPIC = "/diagnostics"
SHEET_FRAMES = 12


def cdr_stamp_ns(raw: bytes) -> int:
    """Header stamp of a serialized message whose first field is a std_msgs/Header."""
    order = "little" if raw[1] == 1 else "big"  # CDR encapsulation: 0x0001 little endian, 0x0000 big
    sec = int.from_bytes(raw[4:8], order, signed=True)
    nanosec = int.from_bytes(raw[8:12], order, signed=False)
    return sec * 1_000_000_000 + nanosec


class ReplayClient:
    """Publishes the camera and records every output of the node, raw, into a bag as it arrives."""

    def __init__(self, image_topic: str, recorder: BagRecorder, context: rclpy.Context) -> None:
        self.node = Node("movseg_replay", context=context)
        self.recorder = recorder
        self.lock = threading.Condition()
        self.start = time.monotonic()
        self.arrived: dict[int, float] = {}  # instances stamp -> arrival (monotonic)
        self.tracks_raw: dict[int, bytes] = {}
        self.instances = 0
        self.diagnostics: list[dict[str, str]] = []
        self.errors: list[str] = []  # callbacks that raised (the recorder could not write, say)
        self.camera = self.node.create_publisher(Image, image_topic, DEEP_RELIABLE)
        for topic, kind in ((INSTANCES_TOPIC, Image), (TRACKS_TOPIC, PointCloud2), (DIAGNOSTICS_TOPIC, DiagnosticArray)):
            recorder.add_topic(topic, f"{kind.__module__.split('.')[0]}/msg/{kind.__name__}")
            self.node.create_subscription(kind, topic, self._recorder_for(topic), DEEP_RELIABLE, raw=True)
        self.node.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC, self._on_diagnostics, RELIABLE)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._thread = spin_in_thread(self.executor)

    def _recorder_for(self, topic: str):  # noqa: ANN202 - an rclpy callback
        def record(raw: bytes) -> None:
            now = time.monotonic()
            try:
                self.recorder.write(topic, time.time_ns(), raw)
            except Exception as e:  # noqa: BLE001 - keep receiving; the summary reports it
                with self.lock:
                    self.errors.append(f"{topic}: {type(e).__name__}: {e}")
                return
            if topic == DIAGNOSTICS_TOPIC:
                return
            stamp = cdr_stamp_ns(raw)
            with self.lock:
                if topic == INSTANCES_TOPIC:
                    self.instances += 1
                    self.arrived.setdefault(stamp, now)
                else:
                    self.tracks_raw.setdefault(stamp, raw)
                self.lock.notify_all()
        return record

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("movseg"):
                with self.lock:
                    self.diagnostics.append({kv.key: kv.value for kv in status.values})
                    self.lock.notify_all()

    def wait_connected(self, node: NodeProcess, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.camera.get_subscription_count() > 0 and self.node.count_publishers(INSTANCES_TOPIC) > 0:
                time.sleep(0.3)
                return
            if not node.alive():
                raise RuntimeError(f"the node exited with code {node.proc.returncode}:\n{node.log()[-3000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"the node did not connect within {timeout} s")

    def publish(self, rgb: np.ndarray, stamp_ns: int, frame_id: str) -> None:
        h, w = rgb.shape[:2]
        self.camera.publish(Image(header=header_of(stamp_ns, frame_id), height=h, width=w, encoding="rgb8",
                                  is_bigendian=0, step=3 * w, data=np.ascontiguousarray(rgb).tobytes()))

    def wait_settled(self, sent: int, timeout: float) -> dict[str, str]:
        """The node's last counters once every received frame is done and its outputs are recorded."""
        def settled() -> bool:
            if not self.diagnostics:
                return False
            d = self.diagnostics[-1]
            received = int(d["frames received"])
            done = sum(int(d[k]) for k in ("frames processed", "frames dropped", "frames bad", "frames failed"))
            return (received == sent and done == received and d["queue depth"] == "0"
                    and int(d["outputs published"]) == self.instances)

        with self.lock:
            self.lock.wait_for(settled, timeout)
            return dict(self.diagnostics[-1]) if self.diagnostics else {}

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self._thread.join(5.0)
        self.node.destroy_node()


def private_context(env: dict[str, str], domain: int) -> rclpy.Context:
    """An rclpy context of our own on the node's domain, so a process that already uses rclpy is left alone."""
    os.environ.update({k: v for k, v in env.items() if k.startswith(("ROS_AUTOMATIC", "FASTDDS_"))})
    context = rclpy.Context()
    context.init(domain_id=domain)
    return context


def replay_live(options: ReplayOptions) -> dict[str, Any]:
    """Play the bag to the node at the recorded rate x `speed`; record, account, score, plot."""
    info, topic, total, truth = open_replay(options)
    options.out.mkdir(parents=True, exist_ok=True)
    output_bag = options.out / "node_output"
    if output_bag.exists():
        shutil.rmtree(output_bag)  # our own output from an earlier replay into this folder
    domain = random_domain()
    env = ros_env(domain)
    node = NodeProcess.start(env, options.params_file, remap=f"image:={topic}")
    account = FrameAccount(in_bag=total)
    sent_at: dict[int, float] = {}
    bad: list[tuple[int, int, str]] = []
    failed = True
    try:  # whatever happens, the node process does not outlive the replay
        with BagRecorder(output_bag, options.storage) as recorder:
            context = private_context(env, domain)
            try:
                client = ReplayClient(topic, recorder, context)
                try:
                    client.wait_connected(node)
                    bad = _play(client, options, topic, total, sent_at)
                    account.sent = len(sent_at)
                    diag = client.wait_settled(account.sent, options.settle_s)
                    exit_code = node.stop()
                finally:
                    client.close()
            finally:
                context.try_shutdown()
        failed = False
    except (RuntimeError, TimeoutError) as e:
        raise RuntimeError(f"live replay failed: {e}\nnode log: {node.log_path}") from None
    finally:
        node_log = node.log()
        node.close(keep_log=failed)
    if not diag:
        raise RuntimeError(f"the node published no diagnostics, so its frames cannot be accounted for; "
                           f"node log:\n{node_log[-2000:]}")
    account.bad_in_bag = len(bad)
    account.received = int(diag.get("frames received", 0))
    account.dropped_by_queue = int(diag.get("frames dropped", 0))
    account.bad_at_node = int(diag.get("frames bad", 0))
    account.failed = int(diag.get("frames failed", 0))
    account.processed = int(diag.get("frames processed", 0))
    account.outputs = int(diag.get("outputs published", 0))
    account.recorded = recorder.counts.get(INSTANCES_TOPIC, 0)  # what is in the output bag
    timing = Timing()
    for stamp, arrived in sorted(client.arrived.items(), key=lambda kv: kv[1]):
        if stamp in sent_at:
            timing.add(1000.0 * (arrived - sent_at[stamp]), arrived - client.start)
    predictions = read_label_maps(output_bag, INSTANCES_TOPIC) if client.instances else {}
    metrics = None
    if truth is not None:
        scorer = StampedScorer(truth, options.bag.name)
        for stamp in sorted(predictions):
            scorer.add(stamp, predictions[stamp])
        last_sent = max(list(sent_at) + [b[1] for b in bad if b[1] is not None], default=None)
        metrics = scorer.result(options.missing_as_empty, last_sent if options.max_frames is not None else None)
    summary: dict[str, Any] = {
        "mode": "live", "bag": str(options.bag), "image_topic": topic, "speed": options.speed,
        "truth_topic": options.truth_topic if truth is not None else None,
        "pipeline": diag.get("pipeline"), "device": diag.get("device"),
        "account": account.to_dict(),
        "bad_in_bag": [{"index": i, "stamp_ns": s, "problem": p} for i, s, p in bad],
        "latency": timing.summary(),
        "node_exit_code": exit_code,
        "recorder_errors": (client.errors + recorder.errors)[:20],
        "node_log_tail": node_log[-2000:],
        "metrics": metrics,
        "files": {"output_bag": str(output_bag)},
    }
    sheet = _contact_sheet(options.bag, topic, predictions, client.tracks_raw, options.out / "contact_sheet.png")
    if sheet is not None:
        summary["files"]["contact_sheet"] = str(sheet)
    return write_summary(summary, timing, options.out, f"live replay of {options.bag.name} at x{options.speed:g}")


def _play(client: ReplayClient, options: ReplayOptions, topic: str, total: int,
          sent_at: dict[int, float]) -> list[tuple[int, int, str]]:
    """Publish the first `total` images on the bag's clock scaled by 1/speed; returns the undecodable ones."""
    images = read_images(options.bag, topic, on_error="skip")
    first_log: int | None = None
    start = time.monotonic()
    for message in tqdm(images, total=total, desc=f"playing {options.bag.name}", unit="frame", file=sys.stderr,
                        disable=None):
        if message.index >= total:
            break
        first_log = message.log_ns if first_log is None else first_log
        due = start + (message.log_ns - first_log) / 1e9 / options.speed
        time.sleep(max(0.0, due - time.monotonic()))
        sent_at[message.stamp_ns] = time.monotonic()
        client.publish(as_rgb(message.image, message.encoding), message.stamp_ns, message.frame_id)
    return [b for b in images.report.bad if b[0] < total]


def _contact_sheet(bag: Path, topic: str, predictions: dict[int, np.ndarray], tracks_raw: dict[int, bytes],
                   path: Path) -> Path | None:
    """Overlays of up to SHEET_FRAMES evenly spaced recorded outputs on their input images."""
    stamps = sorted(predictions)
    if not stamps:
        return None
    picks = {stamps[int(k)] for k in np.linspace(0, len(stamps) - 1, min(SHEET_FRAMES, len(stamps)))}
    tiles, captions = [], []
    for message in read_images(bag, topic, on_error="skip"):
        if message.stamp_ns not in picks:
            continue
        labels = predictions[message.stamp_ns]
        table = tracks_from_cloud(deserialize_message(tracks_raw[message.stamp_ns], PointCloud2)) \
            if message.stamp_ns in tracks_raw else np.zeros(0)
        states = [track_state_of(row, labels) for row in table]
        tiles.append(draw_overlay(as_rgb(message.image, message.encoding), labels, states))
        captions.append(f"frame {message.index}")
    sheet = contact_sheet(tiles, columns=4, width=1280, captions=captions)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return path

