"""Warm-up: the pipeline's once-per-size set-up (traced, frozen networks) done on a built-in stream before the
camera's first frame, leaving no trace in what the stream then gets; the node does it while configuring."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from movseg_ros.frame import Frame
from movseg_ros.pipeline import FrameSizeError, Pipeline, PipelineConfig
from movseg_ros.scene import SceneConfig, make_scene

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SCENE = SceneConfig(width=320, height=240, frames=8, seed=3)


def _stream(pipe: Pipeline) -> list[tuple[np.ndarray, list[int]]]:
    """Each frame's label map and visible track ids."""
    out = []
    for t, image in enumerate(make_scene(SCENE).frames):
        for o in pipe.process(Frame(image, t * 33_333_333, "cam", t)):
            out.append((o.label_map, sorted(tr.id for tr in o.visible)))
    return out


def _graphs(pipe: Pipeline) -> int:
    """Frozen graphs the default pipeline's memory encoder holds (one per input size)."""
    return len(pipe.segmenter.memory_map.memory.features.encoder._graphs)


@pytest.mark.timeout(300)
def test_warm_up_builds_the_networks_for_the_size_and_the_stream_gets_what_it_would_without() -> None:
    cold, warm = Pipeline(PipelineConfig()), Pipeline(PipelineConfig())
    assert _graphs(warm) == 0
    assert warm.warm_up(SCENE.width, SCENE.height) == 2
    assert _graphs(warm) == 1, "the memory encoder's graph for this size is built by the warm-up"
    got, want = _stream(warm), _stream(cold)
    assert len(got) == len(want) == SCENE.frames
    assert any(ids for _, ids in want), "the scene's movers are tracked"
    for (labels, ids), (labels0, ids0) in zip(got, want):
        assert ids == ids0, "no track id was used by the warm-up"
        assert np.array_equal(labels, labels0)
    assert _graphs(warm) == 1, "the stream's frames reuse the warm-up's graph"


def test_warm_up_at_a_size_the_pipeline_cannot_take_says_so() -> None:
    pipe = Pipeline(PipelineConfig.from_dict({"geometric": {"memory_net": "none", "appearance": "none",
                                                           "motion_net": "none"}}))
    with pytest.raises(FrameSizeError, match="warm-up at 2000x40: .*aspect ratio too extreme"):
        pipe.warm_up(2000, 40)


@pytest.mark.ros
@pytest.mark.timeout(240)
@pytest.mark.parametrize("size, logged", [
    ([320, 240], "warmed up at 320x240 (2 frames"),
    ([2000, 40], "warm-up at 2000x40 failed: FrameSizeError"),  # a warning; the node runs on
])
def test_the_node_warms_up_while_configuring_and_runs_on_when_that_fails(rclpy_session, node_env, size,
                                                                         logged) -> None:
    from movseg_ros.ros.storm import texture
    from ros_helpers import NodeProcess, RosHarness, stop_cleanly

    topic = "/warm_up_test/image"
    node = NodeProcess.start(node_env, remap=f"image:={topic}", extra=["-p", f"warmup_size:={size}"])
    harness = RosHarness(topic, "warm_up_test")
    stamps = itertools.count(1_700_000_000_000_000_000, 33_333_333)
    try:
        assert node.wait_log(logged, 120.0), node.log()
        harness.wait_connected(60.0, node)
        stamp = next(stamps)
        harness.publish(texture(240, 320), stamp)
        harness.wait_output(stamp, timeout=30.0)
        assert "Traceback" not in node.log(), node.log()
    finally:
        code, log = stop_cleanly(node, harness)
    assert code == 0, log
