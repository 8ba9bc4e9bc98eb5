"""The geometric segmenter with RAFT flow (flow_method: raft) on the built-in scene."""

from __future__ import annotations

from pathlib import Path

import pytest
from learned_flow_helpers import SHIPPED, plain_state_dict_file

from movseg_ros.frame import Frame
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.scene import SceneConfig, make_scene
from movseg_ros.segmenters.geometric import GeometricConfig


def test_raft_needs_weights_and_known_method() -> None:
    with pytest.raises(ValueError, match="flow_weights"):
        GeometricConfig(flow_method="raft")
    with pytest.raises(ValueError, match="flow_method"):
        GeometricConfig(flow_method="farneback")
    with pytest.raises(ValueError, match="raft_iterations"):
        GeometricConfig(flow_method="raft", flow_weights="w.pt", raft_iterations=0)
    assert GeometricConfig().flow_method == "dis"


def test_pipeline_runs_with_raft_flow(tmp_path: Path) -> None:
    weights = SHIPPED if SHIPPED.exists() else plain_state_dict_file(tmp_path / "raft_small_untrained.pth")
    scene = make_scene(SceneConfig(width=160, height=120, frames=5, seed=0))
    config = PipelineConfig.from_dict({"geometric": {"flow_method": "raft", "flow_weights": str(weights),
                                                     "raft_iterations": 3, "work_width": 160,
                                                     "accelerator": "eager"}})
    pipe = Pipeline(config)
    assert pipe.segmenter.raft is not None
    calls = []
    inner = pipe.segmenter.raft.forward_fn
    pipe.segmenter.raft.set_forward(lambda a, b: calls.append(a.shape) or inner(a, b))
    period = int(1e9 / scene.fps)
    outs = [o for t, img in enumerate(scene.frames) for o in pipe.process(Frame(img, t * period, "cam", t))]
    assert len(outs) == 5
    assert all(o.label_map.shape == (120, 160) for o in outs)
    assert len(calls) == 2 * 4  # both directions for every frame after the first
    assert calls[0] == (1, 3, 128, 160)


def test_raft_flow_goes_through_the_accelerator_chosen_on_the_first_frame(tmp_path: Path, monkeypatch,
                                                                          caplog) -> None:
    """auto with torch.compile switched off falls back to eager, built once for the stream's shape, logged once."""
    import logging

    monkeypatch.setenv("MOVSEG_DISABLE_COMPILE", "1")
    weights = SHIPPED if SHIPPED.exists() else plain_state_dict_file(tmp_path / "raft_small_untrained.pth")
    scene = make_scene(SceneConfig(width=160, height=120, frames=3, seed=1))
    config = PipelineConfig.from_dict({"geometric": {"flow_method": "raft", "flow_weights": str(weights),
                                                     "raft_iterations": 2, "work_width": 160}})
    pipe = Pipeline(config)
    assert config.geometric.accelerator == "auto"
    period = int(1e9 / scene.fps)
    with caplog.at_level(logging.INFO, logger="movseg_ros.accel"):
        for t, img in enumerate(scene.frames):
            pipe.process(Frame(img, t * period, "cam", t))
    accelerated = pipe.segmenter.raft.forward_fn
    assert accelerated.backends == ["eager"]  # one shape, one build
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("movseg_ros.accel")]
    assert len(lines) == 1 and "eager" in lines[0] and "requested auto" in lines[0]
