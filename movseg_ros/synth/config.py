"""Settings of the synthetic clip generator, and one named preset per purpose.

Speeds are per frame and in pixels of the configured resolution; camera translation is in
pixels at depth 1 (a layer at depth d moves by that amount divided by d: parallax).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

EVENTS = ("constant", "start", "stop", "reverse")  # what a moving object's motion does once in the clip
TEXTURE_SOURCES = ("auto", "davis", "skimage")
MAX_OBJECTS = 60  # ids stay < 256 (8-bit palette annotations) with room for parts


class SynthConfigError(ValueError):
    """A generator setting that is out of range or inconsistent; the message names the field."""


RANGE_FIELDS = ("n_moving", "n_static", "object_area", "limb_swing_deg", "limb_rate", "translation", "exposure",
                "noise_sigma", "camera_period", "layer_depth", "object_depth", "event_window")


@dataclass(frozen=True)
class SynthConfig:
    """Everything a clip is drawn from; the clip itself is then fixed by the seed."""

    width: int = 320
    height: int = 240
    frames: int = 4
    # objects
    n_moving: tuple[int, int] = (1, 4)  # objects that move at some point (range, inclusive)
    n_static: tuple[int, int] = (0, 3)  # objects that never move in the world
    object_area: tuple[float, float] = (0.01, 0.06)  # each object's area, fraction of the frame
    cutout_probability: float = 0.6  # object is a real photo cut-out (else a photo-textured procedural outline)
    parts_probability: float = 0.4  # object gets 1-2 limbs that swing about a joint
    limb_swing_deg: tuple[float, float] = (4.0, 12.0)  # amplitude of a limb's swing
    limb_rate: tuple[float, float] = (0.25, 0.7)  # swing phase advance (radians) per frame the object moves
    # object motion (relative to the world)
    translation: tuple[float, float] = (1.0, 5.0)  # speed of a moving object, px/frame
    rotation_deg: float = 2.0  # largest |rotation| of a moving object, deg/frame
    scaling: float = 0.01  # largest |relative scale change| of a moving object per frame
    p_start: float = 0.15  # still at first, then moves
    p_stop: float = 0.15  # moves, then stops
    p_reverse: float = 0.15  # moves, then goes back the way it came
    scripted_events: tuple[str, ...] = ()  # events of the first moving objects, in order (rest drawn at random)
    event_window: tuple[float, float] = (0.2, 0.8)  # where in the clip an event happens, fraction of its length
    # camera ego-motion
    camera_still_probability: float = 0.15  # clip filmed by a still camera
    pan_deg: float = 0.3  # largest |pan| (about the vertical axis), deg/frame
    tilt_deg: float = 0.2  # largest |tilt|, deg/frame
    roll_deg: float = 0.4  # largest |roll|, deg/frame
    zoom: float = 0.008  # largest |relative zoom change| per frame
    camera_translation: float = 2.0  # largest |sideways translation|, px/frame at depth 1
    camera_period: tuple[float, float] = (8.0, 64.0)  # frames per oscillation of the camera's velocity
    focal: float = 1.0  # focal length, multiples of the width (pan/tilt perspective)
    # depth
    depth_layers: int = 3  # background layers: one far full layer, the others partial and nearer
    far_depth: float = 10.0
    layer_depth: tuple[float, float] = (2.0, 6.0)  # depths of the partial background layers
    object_depth: tuple[float, float] = (1.2, 5.0)  # objects between (some behind near background layers)
    # image formation
    blur_probability: float = 0.3  # clip rendered with motion blur
    exposure: tuple[float, float] = (0.2, 0.6)  # blur length, fraction of the frame-to-frame motion
    noise_sigma: tuple[float, float] = (0.5, 3.0)  # Gaussian sensor noise, grey levels (drawn per clip)
    brightness_drift: float = 0.02  # largest |relative gain change| per frame
    texture_source: str = "auto"  # auto: DAVIS frames and objects when present, else scikit-image samples
    davis_root: str | None = None  # DAVIS folder (default: movseg_ros.datasets.davis.default_root())

    def __post_init__(self) -> None:
        _check(32 <= self.width <= 4096 and 32 <= self.height <= 4096, "width/height",
               f"must be in [32, 4096], got {self.width}x{self.height}")
        _check(self.frames >= 2, "frames", f"must be >= 2 (flow needs a next frame), got {self.frames}")
        for name in RANGE_FIELDS:
            value = getattr(self, name)
            _check(isinstance(value, (tuple, list)) and len(value) == 2, name, f"must be a (lo, hi) pair, got {value!r}")
        for name in ("n_moving", "n_static"):
            lo, hi = getattr(self, name)
            _check(0 <= lo <= hi, name, f"must be a range 0 <= lo <= hi, got {(lo, hi)}")
        _check(self.n_moving[1] + self.n_static[1] <= MAX_OBJECTS, "n_moving + n_static",
               f"at most {MAX_OBJECTS} objects, got up to {self.n_moving[1] + self.n_static[1]}")
        for name in RANGE_FIELDS[2:]:
            lo, hi = getattr(self, name)
            _check(0 <= lo <= hi, name, f"must be a range 0 <= lo <= hi, got {(lo, hi)}")
        _check(self.object_area[1] <= 0.5 and self.object_area[0] > 0, "object_area",
               f"must lie in (0, 0.5], got {self.object_area}")
        _check(self.translation[0] > 0 or self.n_moving[1] == 0, "translation",
               f"a moving object's speed must be > 0 px/frame, got {self.translation}")
        _check(self.event_window[1] <= 1.0, "event_window", f"must lie in [0, 1], got {self.event_window}")
        _check(self.camera_period[0] >= 2, "camera_period", f"must be >= 2 frames, got {self.camera_period}")
        for name in ("cutout_probability", "parts_probability", "p_start", "p_stop", "p_reverse",
                     "camera_still_probability", "blur_probability"):
            value = getattr(self, name)
            _check(0.0 <= value <= 1.0, name, f"must be a probability in [0, 1], got {value}")
        _check(self.p_start + self.p_stop + self.p_reverse <= 1.0, "p_start + p_stop + p_reverse",
               f"must be <= 1, got {self.p_start + self.p_stop + self.p_reverse:g}")
        for name in ("rotation_deg", "scaling", "pan_deg", "tilt_deg", "roll_deg", "zoom", "camera_translation",
                     "brightness_drift"):
            value = getattr(self, name)
            _check(value >= 0.0, name, f"must be >= 0, got {value}")
        _check(self.scaling < 0.2 and self.zoom < 0.2, "scaling/zoom", "must be < 0.2 per frame")
        _check(max(self.pan_deg, self.tilt_deg, self.roll_deg) <= 10.0, "pan/tilt/roll", "must be <= 10 deg/frame")
        _check(0.2 <= self.focal <= 10.0, "focal", f"must be in [0.2, 10] widths, got {self.focal}")
        _check(1 <= self.depth_layers <= 4, "depth_layers", f"must be in [1, 4], got {self.depth_layers}")
        _check(self.object_depth[0] >= 0.5, "object_depth", f"must be >= 0.5, got {self.object_depth}")
        _check(self.layer_depth[0] >= 0.5, "layer_depth", f"must be >= 0.5, got {self.layer_depth}")
        _check(self.far_depth > max(self.object_depth[1], self.layer_depth[1]), "far_depth",
               f"must be beyond every object and layer ({self.far_depth} <= "
               f"{max(self.object_depth[1], self.layer_depth[1])})")
        _check(self.texture_source in TEXTURE_SOURCES, "texture_source",
               f"'{self.texture_source}' is not one of {', '.join(TEXTURE_SOURCES)}")
        bad = [e for e in self.scripted_events if e not in EVENTS]
        _check(not bad, "scripted_events", f"unknown event(s) {bad}; known: {', '.join(EVENTS)}")
        _check(len(self.scripted_events) <= self.n_moving[0], "scripted_events",
               f"{len(self.scripted_events)} scripted events but as few as {self.n_moving[0]} moving objects")

    def replace(self, **changes: Any) -> "SynthConfig":
        """A copy with some fields changed (validated again); unknown names are an error."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise SynthConfigError(f"unknown synth setting(s) {unknown}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists)."""
        return dataclasses.asdict(self)


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise SynthConfigError(f"synth setting {name} {message}")


PRESETS: dict[str, SynthConfig] = {
    # Motion-stream training (seed 000: Mask R-CNN on flow images): short clips cut into frame pairs,
    # several objects, strong ego-motion and parallax, motion blur in some clips.
    "motion": SynthConfig(),
    # STEm-Seg clips (seed 004): 8 frames at a DAVIS-like 16:9 aspect, stop-and-go events frequent.
    "stemseg": SynthConfig(
        width=384, height=216, frames=8, n_moving=(1, 3), n_static=(1, 3),
        p_start=0.2, p_stop=0.25, p_reverse=0.15, translation=(1.0, 4.0), camera_period=(12.0, 48.0),
    ),
    # A scene for the node tests: VGA, one object that always moves, one that stops half way, two static
    # objects; the camera pans, zooms and rolls (no sideways translation); no blur.
    "node_test": SynthConfig(
        width=640, height=480, frames=60, n_moving=(2, 2), n_static=(2, 2), scripted_events=("constant", "stop"),
        event_window=(0.5, 0.5), object_area=(0.02, 0.04), parts_probability=0.0, translation=(3.0, 4.0),
        rotation_deg=0.5, scaling=0.0, camera_still_probability=0.0, pan_deg=0.15, tilt_deg=0.1, roll_deg=0.1,
        zoom=0.003, camera_translation=0.0, camera_period=(40.0, 60.0), depth_layers=2, blur_probability=0.0,
        noise_sigma=(2.0, 2.0), brightness_drift=0.0,
    ),
}


def preset(name: str) -> SynthConfig:
    """The named preset; an unknown name is an error listing the known ones."""
    if name not in PRESETS:
        raise SynthConfigError(f"unknown synth preset '{name}' (known: {', '.join(sorted(PRESETS))})")
    return PRESETS[name]
