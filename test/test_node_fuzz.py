"""A seeded storm of malformed messages, decompression bombs included, against the real node in its own process.

The node must stay alive and answer a valid frame within 1 s afterwards, count every malformed
message as bad (never as dropped), account for every message, keep its RSS under twice the idle
figure, and log nothing a publisher could forge.
"""

from __future__ import annotations

import itertools
import re
import time

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("psutil")

from movseg_ros.ros import storm  # noqa: E402
from ros_helpers import NodeProcess, RosHarness  # noqa: E402

pytestmark = [pytest.mark.ros]

TOPIC = "/fuzz/image"
N_BAD = 2000
RATE_HZ = 200.0
SEED = 20261205


@pytest.fixture(scope="module")
def node(node_env):
    proc = NodeProcess.start(node_env, remap=f"image:={TOPIC}", extra=[
        "-p", "diagnostics_period:=0.2", "-p", "use_compressed:=true", "-r", f"image/compressed:={TOPIC}/compressed"])
    yield proc
    try:
        assert proc.stop(timeout=15.0) == 0, proc.log()
    finally:
        proc.close(keep_log=False)


@pytest.fixture(scope="module")
def fuzz(rclpy_session, node) -> storm.StormReport:
    """The storm's report, with the node warmed up on valid frames first (its idle RSS is measured then)."""
    storm.png_bomb()  # built before the clock starts
    harness = RosHarness(TOPIC, "movseg_fuzz")
    try:
        harness.wait_connected(30.0, node)
        deadline = time.monotonic() + 10.0
        while harness.camera_compressed.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        stamps = itertools.count(1_700_000_000_000_000_000, 5_000_000)
        for i in range(5):
            stamp = next(stamps)
            harness.publish(storm.valid(i).msg, stamp)
            harness.wait_output(stamp, timeout=30.0)
        time.sleep(0.5)
        idle = storm.RssSampler(node.pid).now_mb()
        yield storm.run_storm("mixed", harness, node, storm.mixed_storm(SEED, N_BAD), RATE_HZ, stamps, idle)
    finally:
        harness.close()


@pytest.mark.timeout(180)
def test_the_node_survives_and_answers_a_valid_frame_within_a_second(fuzz) -> None:
    assert fuzz.alive
    assert fuzz.answer_s is not None and fuzz.answer_s < 1.0, fuzz.summary()


@pytest.mark.timeout(180)
def test_every_message_is_accounted_for_and_malformed_ones_count_as_bad(fuzz) -> None:
    s = fuzz.summary()
    assert fuzz.sent_bad >= N_BAD and fuzz.sent == fuzz.sent_bad + fuzz.sent_valid, s
    assert fuzz.accounted and fuzz.lost >= 0, s
    assert fuzz.miscounted == 0, f"{fuzz.miscounted} malformed messages reached the queue: {s}"
    assert fuzz.bad + fuzz.lost >= fuzz.sent_bad, s
    assert fuzz.failed == 0, s  # tiny frames no longer fail inside the pipeline
    for kind in ("too_large", "too_small", "step", "empty"):
        assert fuzz.bad_by_kind.get(kind, 0) + fuzz.lost >= fuzz.sent_by_kind.get(kind, 0) > 0, (kind, s)


@pytest.mark.timeout(180)
def test_memory_stays_under_twice_the_idle_figure(fuzz) -> None:
    assert fuzz.rss_max_mb < 2.0 * fuzz.rss_idle_mb, fuzz.summary()


@pytest.mark.timeout(180)
def test_the_log_holds_no_forged_lines_escapes_or_floods(fuzz, node) -> None:
    log = node.log()
    assert "\x1b" not in log and "\u2028" not in log and "\x00" not in log
    lines = log.splitlines()
    line_start = re.compile(r"^\[(DEBUG|INFO|WARN|ERROR|FATAL)\] \[\d+\.\d+\] \[movseg[\w.]*\]: ")
    assert all(line_start.match(line) for line in lines), [line for line in lines if not line_start.match(line)][:3]
    assert not any(storm.INJECTED in line and "skipping bad input" not in line for line in lines)
    assert max(len(line) for line in lines) < 1000
    assert any("skipping bad input (too_large)" in line for line in lines)
