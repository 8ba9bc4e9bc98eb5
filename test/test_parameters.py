"""Node parameters: one per setting, typed and ranged descriptors, clear errors, and a complete YAML."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

pytest.importorskip("rclpy")

from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402

from movseg_ros.pipeline import PipelineConfig  # noqa: E402
from movseg_ros.ros.parameters import (ParameterError, node_specs, read_settings, unknown_overrides,  # noqa: E402
                                       weights_parameter)
from movseg_ros.segmenters.geometric import GeometricConfig  # noqa: E402
from movseg_ros.tracker import TrackerConfig  # noqa: E402
from ros_helpers import PARAMS_FILE  # noqa: E402


def flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def settings_with(**overrides):
    """read_settings on a throwaway node given `overrides` (dots written as '__')."""
    params = [Parameter(k.replace("__", "."), value=v) for k, v in overrides.items()]
    node = Node("movseg", parameter_overrides=params)
    try:
        return read_settings(node), node
    finally:
        node.destroy_node()


def test_every_config_field_is_a_dotted_parameter() -> None:
    names = {s.name for s in node_specs()}
    for f in dataclasses.fields(GeometricConfig):
        assert f"geometric.{f.name}" in names
    for f in dataclasses.fields(TrackerConfig):
        assert f"tracker.{f.name}" in names
    assert {"pipeline", "buffer_length", "queue_size", "qos.reliability", "qos.depth", "use_compressed",
            "publish_overlay", "diagnostics_period"} <= names


def test_descriptors_carry_ranges_and_read_only() -> None:
    specs = {s.name: s.descriptor() for s in node_specs()}
    assert (specs["buffer_length"].integer_range[0].from_value, specs["buffer_length"].integer_range[0].to_value) == (2, 64)
    assert specs["queue_size"].integer_range[0].to_value == 100
    assert specs["diagnostics_period"].floating_point_range[0].from_value == pytest.approx(0.1)
    assert specs["buffer_length"].read_only and specs["tracker.alpha_low"].read_only
    assert not specs["publish_overlay"].read_only and not specs["diagnostics_period"].read_only
    assert all(d.description for d in specs.values())


def test_segment_yaml_lists_every_parameter_at_its_default() -> None:
    values = flatten(yaml.safe_load(PARAMS_FILE.read_text())["movseg"]["ros__parameters"])
    defaults = {s.name: s.default for s in node_specs()}
    missing, extra = sorted(set(defaults) - set(values)), sorted(set(values) - set(defaults))
    assert not missing and not extra, f"config/segment.yaml lacks {missing}, has unknown {extra}"
    for name, default in defaults.items():
        assert values[name] == default and type(values[name]) is type(default), name


@pytest.mark.timeout(60)
def test_defaults_build_the_default_pipeline(rclpy_session) -> None:
    settings, _ = settings_with()
    assert settings.pipeline == PipelineConfig()
    assert (settings.queue_size, settings.reliability, settings.depth) == (1, "best_effort", 5)
    assert (settings.use_compressed, settings.publish_overlay, settings.diagnostics_period) == (False, True, 1.0)


@pytest.mark.timeout(60)
def test_dotted_overrides_reach_the_nested_configs(rclpy_session) -> None:
    settings, _ = settings_with(tracker__t_inactive=4, geometric__work_width=320, buffer_length=5, qos__depth=9)
    assert settings.pipeline.tracker.t_inactive == 4
    assert settings.pipeline.geometric.work_width == 320
    assert settings.pipeline.buffer_length == 5 and settings.depth == 9


@pytest.mark.timeout(60)
@pytest.mark.parametrize("overrides, name, words", [
    ({"buffer_length": 1}, "buffer_length", "[2, 64]"),
    ({"buffer_length": 65}, "buffer_length", "[2, 64]"),
    ({"queue_size": 0}, "queue_size", "[1, 100]"),
    ({"pipeline": "foo"}, "pipeline", "geometric"),
    ({"qos__reliability": "sometimes"}, "qos.reliability", "best_effort"),
    ({"diagnostics_period": 100.0}, "diagnostics_period", "[0.1, 60.0]"),
    ({"diagnostics_period": 2}, "diagnostics_period", "write 2.0"),
    ({"buffer_length": "eight"}, "buffer_length", "integer"),
    ({"tracker__alpha_low": 0.95}, "tracker.alpha_low", "alpha_high"),
    ({"geometric__work_width": 10}, "geometric.work_width", "[64, 1920]"),
    ({"geometric__flow_preset": "turbo"}, "geometric.flow_preset", "medium"),
    ({"stem_seg__clip_overlap": 9}, "stem_seg.clip_overlap", "clip_length=8"),
    ({"stem_seg__clip_length": 4, "stem_seg__clip_overlap": 4}, "stem_seg.clip_overlap", "[0, clip_length=4)"),
    ({"max_input_pixels": 100}, "max_input_pixels", "[256, 1073741824]"),
    ({"max_stamp_jump": 0.0}, "max_stamp_jump", "(0, 1e6]"),
    ({"warmup_size": [640, 10]}, "warmup_size", "at least 32"),
    ({"warmup_size": [640, 480, 3]}, "warmup_size", "[width, height]"),
    ({"warmup_size": [640, 0]}, "warmup_size", "[0, 0] (none)"),
    ({"warmup_size": [640, 480], "max_input_pixels": 1000}, "warmup_size", "within max_input_pixels (1000)"),
])
def test_bad_values_name_the_parameter_and_what_is_allowed(rclpy_session, overrides, name, words) -> None:
    with pytest.raises(ParameterError) as err:
        settings_with(**overrides)
    assert err.value.name == name
    assert f"'{name}'" in str(err.value) and words in str(err.value)


@pytest.mark.timeout(60)
def test_unknown_names_are_reported(rclpy_session) -> None:
    node = Node("movseg", parameter_overrides=[Parameter("tracker.alpha_lo", value=0.5),
                                                 Parameter("use_sim_time", value=False)])
    try:
        read_settings(node)
        assert unknown_overrides(node, node_specs()) == ["tracker.alpha_lo"]
    finally:
        node.destroy_node()


@pytest.mark.parametrize("config, path, name", [
    ({"pipeline": "two_stream", "two_stream": {"weights": "/tmp/mine.pt"}}, "/tmp/mine.pt", "two_stream.weights"),
    ({"pipeline": "two_stream"}, "/share/models/motion_mobilenet_v2.pt", "two_stream.weights"),
    ({"pipeline": "stem_seg"}, "/share/models/stemseg_mobilenet_v2.pt", "stem_seg.weights"),
    ({}, "/share/models/saliency_mobilenet_v2.pt", "geometric.saliency_weights"),
    ({"geometric": {"refine": "learned"}}, "/share/models/refine_geometric.pt", "geometric.refine_weights"),
    ({"geometric": {"flow_method": "raft", "flow_weights": "/tmp/raft.pt"}}, "/tmp/raft.pt", "geometric.flow_weights"),
    ({"pipeline": "visual_memory"}, "/share/models/visual_memory.pt", "visual_memory.weights"),
    ({"pipeline": "visual_memory"}, "/share/models/mpnet.pt", "visual_memory.mpnet_weights"),
])
def test_a_weights_file_error_names_the_parameter_that_chose_the_file(config, path, name) -> None:
    assert weights_parameter(PipelineConfig.from_dict(config), path) == name


def test_max_input_pixels_defaults_to_4096_squared(rclpy_session) -> None:
    settings, _ = settings_with()
    assert settings.max_input_pixels == 4096 * 4096


def test_warmup_size_defaults_to_vga_and_zero_turns_it_off(rclpy_session) -> None:
    assert settings_with()[0].warmup_size == (640, 480)
    assert settings_with(warmup_size=[0, 0])[0].warmup_size == (0, 0)
    assert settings_with(warmup_size=[1280, 720])[0].warmup_size == (1280, 720)
