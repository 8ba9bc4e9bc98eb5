"""PipelineConfig.from_dict: nested settings build the config dataclasses; mistakes name the key."""

from __future__ import annotations

import numpy as np
import pytest

from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.segmenters.geometric import GeometricConfig
from movseg_ros.tracker import TrackerConfig


def test_empty_dict_gives_the_defaults() -> None:
    assert PipelineConfig.from_dict({}) == PipelineConfig()


def test_nested_dicts_build_the_nested_dataclasses() -> None:
    cfg = PipelineConfig.from_dict(
        {
            "buffer_length": 4,
            "geometric": {"work_width": 320, "flow_preset": "fast", "memory": 0.25},
            "tracker": {"alpha_low": 0.6, "alpha_high": 0.85, "t_inactive": 5},
        }
    )
    assert cfg.buffer_length == 4
    assert isinstance(cfg.geometric, GeometricConfig) and isinstance(cfg.tracker, TrackerConfig)
    assert (cfg.geometric.work_width, cfg.geometric.flow_preset, cfg.geometric.memory) == (320, "fast", 0.25)
    assert (cfg.tracker.alpha_low, cfg.tracker.alpha_high, cfg.tracker.t_inactive) == (0.6, 0.85, 5)
    # Settings not given keep their defaults.
    assert cfg.geometric.residual_k == GeometricConfig().residual_k
    assert cfg.tracker.min_iou == TrackerConfig().min_iou


def test_to_dict_round_trips() -> None:
    cfg = PipelineConfig.from_dict({"buffer_length": 3, "tracker": {"t_inactive": 2}})
    d = cfg.to_dict()
    assert d["tracker"]["t_inactive"] == 2 and d["buffer_length"] == 3
    assert PipelineConfig.from_dict(d) == cfg


def test_config_reaches_the_pipeline() -> None:
    pipe = Pipeline(PipelineConfig.from_dict({"buffer_length": 3, "tracker": {"t_inactive": 2}}))
    assert pipe.buffer.length == 3
    assert pipe.tracker.config.t_inactive == 2
    assert (pipe.name, pipe.device, pipe.latency_frames) == ("geometric", "cpu", 0)


@pytest.mark.parametrize(
    "d, key",
    [
        ({"bufer_length": 4}, "'bufer_length'"),
        ({"tracker": {"alpah_low": 0.5}}, "'tracker.alpah_low'"),
        ({"geometric": {"work_widht": 320}}, "'geometric.work_widht'"),
    ],
)
def test_unknown_keys_are_errors_naming_the_full_key(d: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        PipelineConfig.from_dict(d)


def test_unknown_key_error_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="alpha_high.*alpha_low"):
        PipelineConfig.from_dict({"tracker": {"alpah_low": 0.5}})


def test_a_group_given_a_plain_value_is_an_error() -> None:
    with pytest.raises(ValueError, match="'tracker' must be a mapping"):
        PipelineConfig.from_dict({"tracker": 0.7})


@pytest.mark.parametrize(
    "d, key",
    [
        ({"pipeline": "learned"}, "pipeline"),
        ({"buffer_length": 1}, "buffer_length"),
        ({"buffer_length": 100}, "buffer_length"),
        ({"tracker": {"alpha_low": 0.95}}, "alpha_low"),  # over the default alpha_high
        ({"tracker": {"t_inactive": -1}}, "t_inactive"),
        ({"tracker": {"min_iou": 0}}, "min_iou"),
        ({"geometric": {"work_width": 10}}, "work_width"),
        ({"geometric": {"memory": 1.0}}, "memory"),
        ({"geometric": {"flow_preset": "slow"}}, "flow.preset"),
    ],
)
def test_bad_values_are_errors_naming_the_key(d: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        PipelineConfig.from_dict(d)


@pytest.mark.parametrize(
    "d, key",
    [
        ({"tracker": {"alpha_low": "0.7"}}, "alpha_low"),
        ({"buffer_length": "8"}, "buffer_length"),
        ({"buffer_length": 8.5}, "buffer_length"),
    ],
)
def test_wrongly_typed_values_are_errors_naming_the_key(d: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        Pipeline(PipelineConfig.from_dict(d))


@pytest.mark.parametrize("size", [(1, 1), (7, 5), (1, 100_000), (5000, 1), (15, 640), (20, 2000)])
def test_frames_too_small_for_the_pipeline_are_refused_by_name(size) -> None:
    from movseg_ros.frame import Frame
    from movseg_ros.pipeline import FrameSizeError, size_problem

    h, w = size
    assert size_problem(h, w, PipelineConfig()) is not None
    with pytest.raises(FrameSizeError, match=f"{w}x{h}"):
        Pipeline(PipelineConfig()).process(Frame(np.zeros((h, w, 3), np.uint8), 1))


def test_the_smallest_usable_frames_pass() -> None:
    from movseg_ros.pipeline import size_problem

    width = PipelineConfig().geometric.work_width
    assert size_problem(16, 16, PipelineConfig()) is None
    assert size_problem(16, width, PipelineConfig()) is None
    assert size_problem(17, width + width // 16, PipelineConfig()) is None  # 16 px high at the work width
