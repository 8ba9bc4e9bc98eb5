"""The real node with `pipeline: two_stream` in its own process, on tiny weights from the real training
stages: one output a frame, each with its frame's header, in order; a bad weights file stops it cleanly."""

from __future__ import annotations

import pytest

pytest.importorskip("rclpy")

from movseg_ros.ros.image_codec import decode_label_map, stamp_ns_of  # noqa: E402
from movseg_ros.ros.tracks_msg import tracks_from_cloud  # noqa: E402
from movseg_ros.synth.clip import generate_clip  # noqa: E402
from movseg_ros.synth.config import preset  # noqa: E402
from ros_helpers import NodeProcess, RosHarness, assert_refuses_corrupt_weights, stop_cleanly  # noqa: E402

pytestmark = [pytest.mark.ros]

W, H, FRAMES = 160, 120, 8
FRAME_NS = 33_333_333


def _start(node_env, weights: str) -> NodeProcess:
    return NodeProcess.start(node_env, remap="image:=/ts_test/image", extra=[
        "-p", "pipeline:=two_stream", "-p", f"two_stream.weights:={weights}", "-p", "two_stream.accelerator:=eager",
        "-p", "two_stream.min_score:=0.0", "-p", "two_stream.work_width:=96",
        "-p", "two_stream.alpha_low:=0.0", "-p", "two_stream.alpha_high:=0.0",  # untrained scores: let detections track
        "-p", "queue_size:=16", "-p", "qos.reliability:=reliable", "-p", "qos.depth:=16",  # nothing dropped
    ])


@pytest.mark.timeout(240)
def test_two_stream_node_answers_every_frame_with_its_header_in_order(node_env, rclpy_session, tiny_two_stream) -> None:
    node = _start(node_env, str(tiny_two_stream.joint))
    ros = RosHarness("/ts_test/image", node_name="movseg_ts_test")
    try:
        ros.wait_connected(timeout=60.0, node=node)
        clip = generate_clip(preset("motion").replace(width=W, height=H, frames=FRAMES, texture_source="skimage"), 5)
        stamps = [1_800_000_000_000_000_000 + i * FRAME_NS + 7 for i in range(FRAMES)]
        for image, stamp in zip(clip.images, stamps):
            ros.publish(image, stamp, frame_id="cam_two_stream")
        outputs = [ros.wait_output(stamp, timeout=60.0) for stamp in stamps]
        for stamp, (inst, cloud) in zip(stamps, outputs):
            for msg in (inst, cloud):
                assert stamp_ns_of(msg.header) == stamp and msg.header.frame_id == "cam_two_stream"
            assert decode_label_map(inst).shape == (H, W)
            tracks_from_cloud(cloud)
        arrival = [ros.got.instance_times[s][0] for s in stamps]
        assert arrival == sorted(arrival), "outputs out of order"
        assert all(len(ros.got.instances[s]) == 1 for s in stamps), "a frame answered twice"
        tables = [tracks_from_cloud(c) for _, c in outputs]
        assert len(tables[0]) == 0  # no flow on the first frame, so no moving detection and no track
        assert any(len(t) for t in tables[1:]), "with every score let through, some detection must become a track"
        diag = ros.wait_diagnostics(lambda d: d.get("frames processed") == str(FRAMES), timeout=30.0)
        assert diag.get("pipeline") == "two_stream" and diag.get("frames dropped") == "0"
    finally:
        code, log = stop_cleanly(node, ros)
    assert code == 0, log


@pytest.mark.timeout(120)
def test_two_stream_node_refuses_a_corrupt_weights_file(node_env, tmp_path, tiny_two_stream) -> None:
    assert_refuses_corrupt_weights(lambda weights: _start(node_env, weights), tiny_two_stream.joint, tmp_path, "two_stream.weights")
