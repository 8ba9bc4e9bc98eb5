"""The clips' truth: moving flags match the motion, static objects stay put in the world while the camera
moves, the same seed gives the same clip, settings are checked."""

from __future__ import annotations

import numpy as np
import pytest

from movseg_ros.synth import PRESETS, SynthConfig, SynthConfigError, generate_clip, preset
from movseg_ros.synth.clip import Clip

W, H = 192, 144


def config(**changes) -> SynthConfig:
    base = preset("motion").replace(
        width=W, height=H, frames=6, camera_still_probability=0.0, pan_deg=0.5, roll_deg=0.6, zoom=0.012,
        camera_translation=2.5, noise_sigma=(0.0, 0.0), blur_probability=0.0, brightness_drift=0.0)
    return base.replace(**changes)


def world_motion(clip: Clip, t: int, oid: int) -> np.ndarray:
    """Per visible pixel of `oid` at t: its flow minus what the camera alone would make of a still point
    at the object's depth (zero for a thing that does not move in the world)."""
    mask = clip.instances[t] == oid
    ys, xs = np.nonzero(mask)
    depth = float(clip.depth[oid])
    g = clip.camera_matrix(t + 1, depth) @ np.linalg.inv(clip.camera_matrix(t, depth))
    p = g @ np.stack([xs, ys, np.ones_like(xs)]).astype(np.float64)
    still = np.stack([p[0] / p[2] - xs, p[1] / p[2] - ys], axis=1)
    return clip.flow[t][mask] - still


def test_moving_flags_agree_with_the_motion_including_a_stop_and_a_start() -> None:
    clip = generate_clip(config(n_moving=(3, 3), n_static=(2, 2), scripted_events=("stop", "start", "reverse"),
                                event_window=(0.5, 0.5)), 11)
    events = {e: i for i, e in clip.events.items() if e != "static"}
    stop, start, rev = events["stop"], events["start"], events["reverse"]
    k = clip.event_frames[stop]
    assert 1 <= k <= clip.config.frames - 1
    assert clip.moving[:k, stop].all() and not clip.moving[k:, stop].any()
    assert not clip.moving[: clip.event_frames[start], start].any() and clip.moving[clip.event_frames[start]:, start].all()
    assert clip.moving[:, rev].all()
    assert not clip.moving[:, list(clip.static_ids)].any() and len(clip.static_ids) == 2
    assert not clip.moving[:, 0].any()
    checked = {True: 0, False: 0}
    for t in range(clip.flow.shape[0]):
        for oid in clip.ids:
            if np.count_nonzero(clip.instances[t] == oid) < 20:
                continue
            residual = np.linalg.norm(world_motion(clip, t, oid), axis=1)
            if clip.moving[t, oid]:
                assert residual.mean() > 0.5, f"id {oid} flagged moving at t={t} but moves {residual.mean():.3f} px"
            else:
                assert residual.max() < 0.02, f"id {oid} flagged still at t={t} but moves {residual.max():.3f} px"
            checked[bool(clip.moving[t, oid])] += 1
    assert checked[True] >= 5 and checked[False] >= 5
    assert clip.event_frames[rev] == k  # all events at mid-clip (event_window 0.5)
    before, after = world_motion(clip, k - 1, rev).mean(axis=0), world_motion(clip, k, rev).mean(axis=0)
    assert np.linalg.norm(before) > 0.5 and np.dot(before, after) < 0  # it goes back the way it came


def test_static_objects_stay_still_in_world_coordinates_while_the_camera_moves() -> None:
    """Map a static object's pixels back into the world through each frame's camera: the same place every
    frame, though its place in the image changes (no flow used: id maps and camera only)."""
    clip = generate_clip(config(n_moving=(0, 0), n_static=(1, 1), layer_depth=(6.0, 8.0), object_area=(0.02, 0.03)), 21)
    oid = clip.static_ids[0]
    world, image = [], []
    for t in range(clip.images.shape[0]):
        ys, xs = np.nonzero(clip.instances[t] == oid)
        assert xs.size > 100 and xs.min() > 0 and ys.min() > 0 and xs.max() < W - 1 and ys.max() < H - 1
        back = np.linalg.inv(clip.camera_matrix(t, float(clip.depth[oid]))) @ np.stack([xs, ys, np.ones_like(xs)])
        world.append((back[:2] / back[2]).mean(axis=1))
        image.append([xs.mean(), ys.mean()])
    world, image = np.array(world), np.array(image)
    assert np.linalg.norm(image - image[0], axis=1).max() > 2.0  # the camera moved it in the image
    assert np.linalg.norm(world - world[0], axis=1).max() < 0.35  # but not in the world
    wrong_depth = np.linalg.inv(clip.camera_matrix(clip.images.shape[0] - 1, 1000.0))  # the check can fail
    ys, xs = np.nonzero(clip.instances[-1] == oid)
    back = wrong_depth @ np.stack([xs, ys, np.ones_like(xs)])
    assert np.linalg.norm((back[:2] / back[2]).mean(axis=1) - world[0]) > 0.5


def test_depth_order_lists_visible_ids_nearest_first() -> None:
    clip = generate_clip(config(n_moving=(3, 3), n_static=(2, 2)), 5)
    for t in range(clip.images.shape[0]):
        order = clip.depth_order(t)
        assert set(order) == set(np.unique(clip.instances[t]).tolist()) - {0}
        assert [float(clip.depth[i]) for i in order] == sorted(float(clip.depth[i]) for i in order)
    assert clip.depth[0] == clip.config.far_depth and (clip.depth[1:] < clip.depth[0]).all()


def test_same_seed_same_clip_other_seed_other_clip() -> None:
    c = config(blur_probability=1.0, noise_sigma=(2.0, 2.0), brightness_drift=0.05)
    a, b, other = generate_clip(c, 7), generate_clip(c, 7), generate_clip(c, 8)
    for field in ("images", "flow", "instances", "moving", "depth", "gains"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert a.events == b.events and a.kinds == b.kinds
    assert not np.array_equal(a.images, other.images)
    assert a.exposure > 0 and a.noise_sigma == 2.0


def test_noise_blur_and_brightness_are_applied() -> None:
    plain = generate_clip(config(), 3)
    noisy = generate_clip(config(noise_sigma=(3.0, 3.0)), 3)
    diff = noisy.images.astype(np.float32) - plain.images.astype(np.float32)
    assert 2.0 < diff.std() < 4.0 and np.array_equal(noisy.instances, plain.instances)
    bright = generate_clip(config(brightness_drift=0.05), 3)
    assert not np.allclose(bright.gains, 1.0) and bright.gains[0] == 1.0
    blurred = generate_clip(config(blur_probability=1.0, exposure=(0.8, 0.8)), 3)
    sharp = np.abs(np.diff(plain.images[0].astype(np.float32), axis=1)).mean()
    assert np.abs(np.diff(blurred.images[0].astype(np.float32), axis=1)).mean() < sharp


def test_textures_come_from_scikit_image_when_asked() -> None:
    clip = generate_clip(config(texture_source="skimage", cutout_probability=1.0, n_moving=(2, 2)), 0)
    assert clip.texture_source == "skimage"
    assert any(k.startswith("cutout:skimage:coins") for k in clip.kinds.values())


def test_textures_come_from_davis_when_present() -> None:
    from movseg_ros.datasets.davis import default_root

    if not default_root().is_dir():
        pytest.skip(f"DAVIS folder {default_root()} not present")
    clip = generate_clip(config(texture_source="davis", cutout_probability=1.0, n_moving=(3, 3)), 0)
    assert clip.texture_source == "davis"
    assert all(k.startswith("cutout:davis:") for k in clip.kinds.values())


def test_presets_and_their_purposes() -> None:
    assert {"motion", "stemseg", "node_test"} <= set(PRESETS)
    node = preset("node_test")
    assert (node.width, node.height) == (640, 480) and node.scripted_events == ("constant", "stop")
    assert preset("stemseg").frames == 8
    with pytest.raises(SynthConfigError, match="unknown synth preset 'nope'.*motion"):
        preset("nope")


@pytest.mark.parametrize("changes, field", [
    ({"width": 10}, "width"),
    ({"frames": 1}, "frames"),
    ({"n_moving": (3, 1)}, "n_moving"),
    ({"p_start": 0.6, "p_stop": 0.6}, "p_start"),
    ({"texture_source": "flickr"}, "texture_source"),
    ({"scripted_events": ("fly",)}, "scripted_events"),
    ({"object_depth": (1.0, 20.0)}, "far_depth"),
    ({"blur_probability": 1.5}, "blur_probability"),
    ({"colour": 3}, "colour"),
    ({"noise_sigma": 0.0}, "noise_sigma"),  # a range given as one number
])
def test_bad_settings_are_refused_naming_the_field(changes: dict, field: str) -> None:
    with pytest.raises(SynthConfigError, match=field):
        preset("motion").replace(**changes)


def test_bad_seed_is_refused() -> None:
    with pytest.raises(SynthConfigError, match="seed"):
        generate_clip(config(), -1)
