"""The real node with `pipeline: stem_seg` in its own process, on tiny weights from the real training stage:
near-online outputs, each with the header of the frame it belongs to, in order, none missing (the held
last frames come out when the stream breaks, has a gap, or stops for flush_after), the latency on
/diagnostics, and a bad weights file stops the node cleanly."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("rclpy")

from movseg_ros.ros.image_codec import decode_label_map, stamp_ns_of  # noqa: E402
from movseg_ros.ros.tracks_msg import tracks_from_cloud  # noqa: E402
from movseg_ros.synth.clip import generate_clip  # noqa: E402
from movseg_ros.synth.config import preset  # noqa: E402
from ros_helpers import NodeProcess, RosHarness, assert_refuses_corrupt_weights, stop_cleanly  # noqa: E402

pytestmark = [pytest.mark.ros]

W, H, FRAMES, T, TC = 160, 120, 10, 4, 1
FRAME_NS = 33_333_333
FLUSH_S = 1.0  # flush_after in the silence test: well over the time the node takes to receive a burst


def _start(node_env, weights: str, extra: list[str] | None = None) -> NodeProcess:
    return NodeProcess.start(node_env, remap="image:=/ss_test/image", extra=[
        "-p", "pipeline:=stem_seg", "-p", f"stem_seg.weights:={weights}", "-p", "stem_seg.accelerator:=eager",
        "-p", f"stem_seg.clip_length:={T}", "-p", f"stem_seg.clip_overlap:={TC}", "-p", "stem_seg.work_width:=96",
        "-p", "stem_seg.seed_threshold:=0.0", "-p", "stem_seg.min_tube_seediness:=0.0",  # untrained heat maps: seed anything
        "-p", "queue_size:=16", "-p", "qos.reliability:=reliable", "-p", "qos.depth:=16",  # nothing dropped
        *(extra or []),
    ])


@pytest.mark.timeout(240)
def test_stem_seg_node_answers_every_frame_late_with_its_own_header_in_order(node_env, rclpy_session,
                                                                             tiny_stemseg) -> None:
    node = _start(node_env, str(tiny_stemseg), ["-p", "flush_after:=0.0"])  # held frames wait however slow the test
    ros = RosHarness("/ss_test/image", node_name="movseg_ss_test")
    try:
        ros.wait_connected(timeout=60.0, node=node)
        clip = generate_clip(preset("motion").replace(width=W, height=H, frames=FRAMES, texture_source="skimage"), 5)
        stamps = [1_900_000_000_000_000_000 + i * FRAME_NS + 11 for i in range(FRAMES)]
        for i, (image, stamp) in enumerate(zip(clip.images, stamps)):
            ros.publish(image, stamp, frame_id="cam_stem_seg")
            if i >= T:  # steady state: frame i - (T - T_c) is answered once frame i is in
                ros.wait_output(stamps[i - (T - TC)], timeout=60.0)
                assert not ros.got.instances.get(stamps[i - (T - TC) + 1]), "published earlier than T - T_c frames late"
        answered = [s for s in stamps if ros.got.instances.get(s)]
        assert answered == stamps[:FRAMES - (T - TC)]  # the last T - T_c frames wait for more frames
        # a frame of another size breaks the stream: the node hands over the frames it held, then goes on
        ros.publish(clip.images[0][: H // 2, : W // 2].copy(), stamps[-1] + FRAME_NS, frame_id="cam_stem_seg")
        outputs = [ros.wait_output(stamp, timeout=60.0) for stamp in stamps]
        for stamp, (inst, cloud) in zip(stamps, outputs):
            for msg in (inst, cloud):
                assert stamp_ns_of(msg.header) == stamp and msg.header.frame_id == "cam_stem_seg"
            assert decode_label_map(inst).shape == (H, W)
        arrival = [ros.got.instance_times[s][0] for s in stamps]
        assert arrival == sorted(arrival), "outputs out of order"
        assert all(len(ros.got.instances[s]) == 1 for s in stamps), "a frame answered twice"
        assert any(len(tracks_from_cloud(c)) for _, c in outputs), "seed threshold 0 must give some tube"
    finally:
        code, log = stop_cleanly(node, ros)
    assert code == 0, log


@pytest.mark.timeout(240)
def test_stem_seg_node_ends_clips_at_a_gap_flushes_at_a_stamp_going_back_and_after_silence(node_env, rclpy_session,
                                                                                          tiny_stemseg) -> None:
    """Six frames, two missing (seen from the stamps), four more, then three with stamps going back, all sent at
    once, then nothing: the first six come out when the gap is seen, the next four when the stamp goes back, the
    last three flush_after seconds after they arrived; each once, in order, with its own header."""
    node = _start(node_env, str(tiny_stemseg), ["-p", f"flush_after:={FLUSH_S}", "-p", "diagnostics_period:=0.2"])
    ros = RosHarness("/ss_test/image", node_name="movseg_ss_gaps")
    try:
        ros.wait_connected(timeout=60.0, node=node)
        clip = generate_clip(preset("motion").replace(width=W, height=H, frames=13, texture_source="skimage"), 6)
        t0 = 1_950_000_000_000_000_000
        before_gap = [t0 + i * FRAME_NS for i in range(6)]
        after_gap = [t0 + i * FRAME_NS for i in range(8, 12)]  # frames 6 and 7 never come
        went_back = [t0 - i * FRAME_NS for i in (3, 2, 1)]  # a new stream
        sent = before_gap + after_gap + went_back
        for image, stamp in zip(clip.images, sent):
            last_sent = time.monotonic()  # the node cannot have the last frame before this
            ros.publish(image, stamp, frame_id="cam_gaps")
        outputs = [ros.wait_output(stamp, timeout=60.0) for stamp in sent]
        for stamp, (inst, cloud) in zip(sent, outputs):
            for msg in (inst, cloud):
                assert stamp_ns_of(msg.header) == stamp and msg.header.frame_id == "cam_gaps"
        arrival = [ros.got.instance_times[s][0] for s in sent]
        assert arrival == sorted(arrival), "outputs out of order"
        assert all(len(ros.got.instances[s]) == 1 for s in sent), "a frame answered twice"
        assert min(arrival[-3:]) - last_sent >= FLUSH_S, "the last frames came out before flush_after"
        old_ids = {int(i) for _, cloud in outputs[:-3] for i in tracks_from_cloud(cloud)["id"]}
        new_ids = {int(i) for _, cloud in outputs[-3:] for i in tracks_from_cloud(cloud)["id"]}
        assert new_ids and new_ids.isdisjoint(old_ids), "the stream after the stamp went back is not a new one"
        diag = ros.wait_diagnostics(lambda d: d.get("outputs published") == str(len(sent)), timeout=30.0)
        assert (diag["stream gaps"], diag["stream resets"], diag["resets (stamp)"], diag["flushes"]) == ("1", "1", "1", "1")
        assert diag["output latency (frames)"] == str(T - TC)
        assert 0.0 <= float(diag["output latency p50 (ms)"]) <= float(diag["output latency p95 (ms)"])
        assert float(diag["output latency p95 (ms)"]) >= 1000 * FLUSH_S  # arrival to publication of each frame's own output
    finally:
        code, log = stop_cleanly(node, ros)
    assert code == 0, log
    assert "no frame for 1 s: published the 3 held frame(s)" in log and "stream gap" in log, log


@pytest.mark.timeout(120)
def test_stem_seg_node_refuses_a_corrupt_weights_file(node_env, tmp_path, tiny_stemseg) -> None:
    assert_refuses_corrupt_weights(lambda weights: _start(node_env, weights), tiny_stemseg, tmp_path, "stem_seg.weights")
