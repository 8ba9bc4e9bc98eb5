"""The node's ROS parameters: declared with descriptors and ranges, validated once at start.

Pipeline settings map 1:1 onto PipelineConfig's nested dataclasses as dotted names
(`geometric.work_width`, `tracker.alpha_low`, ...), generated from `dataclasses.fields()` so a
new config field becomes a parameter with no change here. Any bad value becomes a
`ParameterError` naming the parameter and what is allowed.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node

from movseg_ros.pipeline import PIPELINES, PipelineConfig

DEFAULT_MAX_INPUT_PIXELS = 4096 * 4096
DEFAULT_CAMERA_FROM_SENSOR_RPY = (0.0, -90.0, 90.0)  # a REP-103 body frame (x forward, z up) to the optical frame
DEFAULT_WARMUP_SIZE = (640, 480)  # the common camera size: its first frame is then answered at once
WARMUP_MIN_SIDE = 32
Value = Union[bool, int, float, str, list]
RELIABILITIES = ("best_effort", "reliable")
# parameters every rclpy node may receive without declaring them here
_FOREIGN_PREFIXES = ("use_sim_time", "qos_overrides.", "start_type_description_service")
_FIELD_COMMENT = re.compile(r"^\s+(\w+)\s*:[^#\n]*=[^#\n]*#\s*(.+)$", re.MULTILINE)


class ParameterError(ValueError):
    """A parameter value the node cannot run with; the message names the parameter."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"parameter '{name}': {message}")
        self.name = name


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its default (which fixes its type), description and allowed values."""

    name: str
    default: Value
    description: str
    int_range: tuple[int, int] | None = None
    float_range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None
    read_only: bool = True

    def descriptor(self) -> ParameterDescriptor:
        d = ParameterDescriptor(name=self.name, description=self.description, read_only=self.read_only)
        if self.int_range is not None:
            d.integer_range = [IntegerRange(from_value=self.int_range[0], to_value=self.int_range[1], step=1)]
        if self.float_range is not None:
            d.floating_point_range = [FloatingPointRange(from_value=self.float_range[0], to_value=self.float_range[1], step=0.0)]
        if self.choices is not None:
            d.additional_constraints = f"one of: {', '.join(self.choices)}"
        return d

    def allowed(self) -> str:
        """Human words for the allowed values."""
        if self.choices is not None:
            return f"one of {', '.join(self.choices)}"
        if self.int_range is not None:
            return f"an integer in [{self.int_range[0]}, {self.int_range[1]}]"
        if self.float_range is not None:
            return f"a double in [{self.float_range[0]}, {self.float_range[1]}]"
        return f"a {_type_name(self.default)}"


@dataclass(frozen=True)
class NodeSettings:
    """Everything the node reads from its parameters, validated."""

    pipeline: PipelineConfig
    queue_size: int = 1
    flush_after: float = 0.5
    reliability: str = "best_effort"
    depth: int = 5
    use_compressed: bool = False
    publish_overlay: bool = True
    max_rate: float = 0.0
    diagnostics_period: float = 1.0
    max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS
    autostart: bool = True
    depth_enabled: bool = False
    depth_max_stamp_diff: float = 0.02
    points_budget: int = 5000
    imu_enabled: bool = False
    odom_enabled: bool = False
    camera_from_sensor_rpy: tuple[float, float, float] = DEFAULT_CAMERA_FROM_SENSOR_RPY
    warmup_size: tuple[int, int] = DEFAULT_WARMUP_SIZE

    @property
    def camera_info_needed(self) -> bool:
        """Depth and the rotation prior both need the colour camera's intrinsics."""
        return self.depth_enabled or self.imu_enabled or self.odom_enabled


def node_specs() -> list[ParamSpec]:
    """Every parameter of the node, node-level ones first, then the pipeline's."""
    defaults = PipelineConfig()
    node_level = [
        ParamSpec("pipeline", defaults.pipeline, "Segmentation pipeline to run.", choices=tuple(PIPELINES)),
        ParamSpec("buffer_length", defaults.buffer_length,
                  "Frames kept in the clip buffer (history the segmenter can look at).", int_range=(2, 64)),
        ParamSpec("queue_size", 1, "Input frames waiting for the worker; when full the oldest is dropped.",
                  int_range=(1, 100)),
        ParamSpec("flush_after", 0.5, "Seconds without a frame after which a near-online pipeline's held frames "
                  "are segmented and published with their own headers (0 = only when the stream breaks).",
                  float_range=(0.0, 60.0)),
        ParamSpec("qos.reliability", "best_effort",
                  "Input subscription reliability: best_effort (sensor data) or reliable.", choices=RELIABILITIES),
        ParamSpec("qos.depth", 5, "Input subscription history depth (keep last).", int_range=(1, 100)),
        ParamSpec("use_compressed", False, "Also subscribe to image/compressed (jpeg/png)."),
        ParamSpec("autostart", True, "Configure and activate the lifecycle node at start (false: wait for "
                  "the lifecycle manager)."),
        ParamSpec("depth.enabled", False, "Subscribe depth/image (16UC1 mm or 32FC1 m, registered to colour), "
                  "depth/camera_info and camera_info; publish 3D track fields, moving_points and markers."),
        ParamSpec("depth.max_stamp_diff", 0.02, "Seconds between a colour frame's stamp and its depth image's, at most.",
                  float_range=(0.0, 1.0)),
        ParamSpec("moving_points.budget", 5000, "Most points in one /movseg/moving_points cloud (evenly subsampled).",
                  int_range=(0, 1_000_000)),
        ParamSpec("imu.enabled", False, "Subscribe imu (sensor_msgs/Imu): its gyro predicts the camera's rotation "
                  "between frames (needs camera_info)."),
        ParamSpec("odom.enabled", False, "Subscribe odom (nav_msgs/Odometry): its orientation predicts the camera's "
                  "rotation when no gyro covers the interval (needs camera_info)."),
        ParamSpec("camera_from_sensor_rpy", list(DEFAULT_CAMERA_FROM_SENSOR_RPY),
                  "Rotation (roll, pitch, yaw degrees, fixed axes x-y-z as tf2) from the IMU/odometry frame to the "
                  "camera's optical frame; the default suits a body frame x forward, y left, z up."),
        ParamSpec("warmup_size", list(DEFAULT_WARMUP_SIZE),
                  "Width and height of a short built-in stream the pipeline segments while configuring, so the "
                  "camera's first frame does not wait for its networks' per-size set-up (about 1 s on 2 cores); "
                  "[0, 0] = none. Another camera size is set up on its first frame, as without it."),
        ParamSpec("max_input_pixels", DEFAULT_MAX_INPUT_PIXELS,
                  "Largest input image (width*height) accepted; larger ones are refused as bad before decoding.",
                  int_range=(256, 1 << 30)),
        ParamSpec("max_rate", 0.0, "Most frames a second segmented, by header stamps (a 30 Hz camera at 15: every "
                  "other frame); the others are counted as skipped, not dropped. 0 = every frame.",
                  float_range=(0.0, 1000.0), read_only=False),
        ParamSpec("publish_overlay", True,
                  "Publish /movseg/overlay (built only while someone subscribes).", read_only=False),
        ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages.",
                  float_range=(0.1, 60.0), read_only=False),
    ]
    known = {s.name for s in node_level}
    return node_level + [s for s in _dataclass_specs(PipelineConfig, defaults, "") if s.name not in known]


def _dataclass_specs(cls: type, instance: Any, prefix: str) -> list[ParamSpec]:
    """One spec per leaf field of a (nested) config dataclass, typed by its default value."""
    specs = []
    comments = _field_comments(cls)
    for f in dataclasses.fields(cls):
        value = getattr(instance, f.name)
        name = prefix + f.name
        if dataclasses.is_dataclass(value):
            specs += _dataclass_specs(type(value), value, name + ".")
            continue
        if isinstance(value, tuple):
            value = list(value)
        if str(f.type) == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        help_text = (f.metadata.get("help") if f.metadata else None) or comments.get(f.name)
        description = f"{help_text} ({cls.__name__}.{f.name})" if help_text else f"{cls.__name__}.{f.name} (see {cls.__module__})."
        specs.append(ParamSpec(name, value, description))
    return specs


def _field_comments(cls: type) -> dict[str, str]:
    """Trailing `# comments` of a dataclass's fields in its source: the parameters' descriptions."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    return {m.group(1): m.group(2).strip() for m in _FIELD_COMMENT.finditer(source)}


def declare(node: Node, specs: list[ParamSpec]) -> dict[str, Value]:
    """Declare every spec on the node; return the values (overrides applied), or raise ParameterError."""
    values: dict[str, Value] = {}
    for spec in specs:
        try:
            param = node.declare_parameter(spec.name, spec.default, spec.descriptor())
        except InvalidParameterTypeException:
            given = _given(node, spec.name)
            raise ParameterError(spec.name, f"must be {spec.allowed()}, got {given!r} "
                                            f"({_type_name(given)}){_hint(spec.default, given)}") from None
        except InvalidParameterValueException:
            raise ParameterError(spec.name, f"must be {spec.allowed()}, got {_given(node, spec.name)!r}") from None
        value = param.value
        if spec.choices is not None and value not in spec.choices:
            raise ParameterError(spec.name, f"must be {spec.allowed()}, got {value!r}")
        values[spec.name] = value
    return values


def unknown_overrides(node: Node, specs: list[ParamSpec]) -> list[str]:
    """Names given to the node (e.g. in the params file) that no spec declares: likely typos."""
    known = {s.name for s in specs}
    return sorted(n for n in _overrides(node) if n not in known and not n.startswith(_FOREIGN_PREFIXES))


def _overrides(node: Node) -> dict[str, Any]:
    """The values given at start (params files, -p); rclpy keeps no public list of them."""
    return getattr(node, "_parameter_overrides", {})


def _given(node: Node, name: str) -> Any:
    override = _overrides(node).get(name)
    return None if override is None else override.value


def pipeline_config(values: dict[str, Value]) -> PipelineConfig:
    """PipelineConfig.from_dict on the dotted values; its ValueError becomes a ParameterError."""
    tree: dict[str, Any] = {}
    pipeline_names = {s.name for s in _dataclass_specs(PipelineConfig, PipelineConfig(), "")}
    for name, value in values.items():
        if name not in pipeline_names:
            continue
        *groups, leaf = name.split(".")
        node = tree
        for g in groups:
            node = node.setdefault(g, {})
        node[leaf] = tuple(value) if isinstance(value, list) else value
    try:
        return PipelineConfig.from_dict(tree)
    except (ValueError, TypeError) as e:
        raise ParameterError(_blame(str(e), tree), str(e)) from None


def read_settings(node: Node) -> NodeSettings:
    """Declare and validate every parameter; the node's whole configuration."""
    specs = node_specs()
    values = declare(node, specs)
    return NodeSettings(
        pipeline=pipeline_config(values),
        queue_size=int(values["queue_size"]),
        flush_after=float(values["flush_after"]),
        reliability=str(values["qos.reliability"]),
        depth=int(values["qos.depth"]),
        use_compressed=bool(values["use_compressed"]),
        publish_overlay=bool(values["publish_overlay"]),
        max_rate=float(values["max_rate"]),
        diagnostics_period=float(values["diagnostics_period"]),
        max_input_pixels=int(values["max_input_pixels"]),
        autostart=bool(values["autostart"]),
        depth_enabled=bool(values["depth.enabled"]),
        depth_max_stamp_diff=float(values["depth.max_stamp_diff"]),
        points_budget=int(values["moving_points.budget"]),
        imu_enabled=bool(values["imu.enabled"]),
        odom_enabled=bool(values["odom.enabled"]),
        camera_from_sensor_rpy=_rpy(values["camera_from_sensor_rpy"]),
        warmup_size=_warmup_size(values["warmup_size"], int(values["max_input_pixels"])),
    )


def weights_parameter(config: PipelineConfig, path: Path | str) -> str:
    """The parameter that names the weights file `path` of the configured pipeline (for its errors).

    A field naming that file wins; otherwise the shipped default was loaded, and the field left
    empty is the one at fault: the empty one whose prefix the shipped file's name starts with
    (saliency_weights for saliency_mobilenet_v2.pt), else an empty `weights`, else the last empty one.
    """
    group = config.pipeline
    settings = getattr(config, group)
    names = [f.name for f in dataclasses.fields(settings) if f.name.endswith("weights")]
    target = Path(path).expanduser().resolve()
    for name in names:
        value = getattr(settings, name)
        if value and Path(value).expanduser().resolve() == target:
            return f"{group}.{name}"
    empty = [n for n in names if not getattr(settings, n)]
    named = [n for n in empty if n != "weights" and target.name.startswith(n.removesuffix("_weights"))]
    if named:
        return f"{group}.{named[0]}"
    if "weights" in empty:  # the pipeline's own network (visual_memory.weights beside mpnet_weights)
        return f"{group}.weights"
    return f"{group}.{(empty or names or ['weights'])[-1]}"


def _rpy(value: Value) -> tuple[float, float, float]:
    """camera_from_sensor_rpy as three finite degrees, or a ParameterError."""
    if not isinstance(value, (list, tuple)) or len(value) != 3 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and abs(float(v)) <= 360.0 for v in value):
        raise ParameterError("camera_from_sensor_rpy", f"must be three doubles (roll, pitch, yaw degrees, each "
                                                       f"within +-360), got {value!r}")
    return (float(value[0]), float(value[1]), float(value[2]))


def _warmup_size(value: Value, max_pixels: int) -> tuple[int, int]:
    """warmup_size as (width, height): [0, 0], or two integers of at least WARMUP_MIN_SIDE within max_input_pixels."""
    ok = (isinstance(value, (list, tuple)) and len(value) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in value))
    if ok and tuple(value) != (0, 0):
        ok = min(value) >= WARMUP_MIN_SIDE and value[0] * value[1] <= max_pixels
    if not ok:
        raise ParameterError("warmup_size", f"must be [0, 0] (none) or [width, height], integers of at least "
                                            f"{WARMUP_MIN_SIDE} within max_input_pixels ({max_pixels}), got {value!r}")
    return (int(value[0]), int(value[1]))


def _blame(message: str, tree: dict[str, Any]) -> str:
    """The dotted parameter a config ValueError is about: the one its message names first."""
    found: list[tuple[int, int, str]] = []
    for group, sub in tree.items():
        names = [(f"{group}.{leaf}", leaf) for leaf in sub] if isinstance(sub, dict) else [(group, group)]
        for dotted, leaf in names:
            for rank, text in enumerate((dotted, leaf, leaf.replace("_", " "))):
                at = _word_at(message, text)
                if at >= 0:
                    found.append((at, rank, dotted))
                    break
    failing = [f for f in found if "." not in f[2] or _group_fails(f[2].split(".")[0], tree)]
    return min(failing or found)[2] if found else "pipeline settings"


def _group_fails(group: str, tree: dict[str, Any]) -> bool:
    """True when the settings of `group` alone are invalid (so the error is theirs)."""
    try:
        PipelineConfig.from_dict({group: tree[group]})
    except (ValueError, TypeError):
        return True
    return False


def _word_at(message: str, word: str) -> int:
    """Index of `word` in `message` as a whole word (not inside clip_overlap for 'overlap'), or -1."""
    m = re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", message)
    if m is None and "." in word:
        m = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", message)
    return m.start() if m else -1


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def _hint(default: Value, given: Any) -> str:
    if isinstance(default, float) and isinstance(given, int) and not isinstance(given, bool):
        return f"; write {float(given)} for a double"
    return ""
