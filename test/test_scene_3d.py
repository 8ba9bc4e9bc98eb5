"""The synthetic scene's 3D truth (depth, intrinsics, camera rotation, centroids) agrees with its pictures,
and adding it left every rendered frame and id map as it was."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from movseg_ros.scene import ROLE_IDS, Scene, SceneConfig, camera_transform, make_scene

# sha256 of all frames and of all id maps, from scene.py before the 3D truth (commit 71b196c), this OpenCV build
DEFAULT_DIGESTS = ("b21ee3d76563cf5f5f54d678102f41999a35c3d223cf1d9938fdd2d6619aa300",
                   "c3962b6473a30ce2800c28198305254bb106cbe45c85cd4806aec79ddbf71f56")
OTHER = SceneConfig(width=200, height=150, frames=16, seed=7, stop_frame=8, pan_speed=4.0, zoom_amplitude=0.05,
                    roll_degrees=3.0)
OTHER_DIGESTS = ("25019c1824dab2fa107558dd3d8a5d275c778c27fa736abef6a7478579c705c4",
                 "8e394e66335bc9ef5176cde6767edcd9e9a0d1e508b914c56143165d9309466c")
PURE_PAN = SceneConfig(zoom_amplitude=0.0, roll_degrees=0.0, frames=20)


@pytest.fixture(scope="module")
def scene() -> Scene:
    return make_scene()


@pytest.fixture(scope="module")
def pan_scene() -> Scene:
    return make_scene(PURE_PAN)


def digests(clip: Scene) -> tuple[str, str]:
    frames, ids = hashlib.sha256(), hashlib.sha256()
    for image, id_map in zip(clip.frames, clip.ids):
        frames.update(image.tobytes())
        ids.update(id_map.tobytes())
    return frames.hexdigest(), ids.hexdigest()


def zoom(config: SceneConfig, t: int) -> float:
    """The zoom factor s of frame t, read off the camera's 2D transform (s R(roll))."""
    return float(np.sqrt(np.linalg.det(camera_transform(config, t)[:, :2])))


def pixel_step(config: SceneConfig, t: int, pixels: np.ndarray) -> np.ndarray:
    """Where 2xN pixels of frame t - 1 are in frame t, by the rendering's exact 2D camera motion."""
    a = np.vstack([camera_transform(config, t - 1), [0, 0, 1]])
    b = np.vstack([camera_transform(config, t), [0, 0, 1]])
    return (b @ np.linalg.inv(a) @ np.vstack([pixels, np.ones(pixels.shape[1])]))[:2]


def rotation_homography(clip: Scene, t: int, pixels: np.ndarray) -> np.ndarray:
    """2xN pixels of frame t - 1 carried by K R K^-1 with the scene's rotation into frame t."""
    k = clip.intrinsics.matrix
    out = k @ clip.rotations[t] @ np.linalg.inv(k) @ np.vstack([pixels, np.ones(pixels.shape[1])])
    return out[:2] / out[2]


def test_default_rendering_is_unchanged(scene: Scene) -> None:
    assert digests(scene) == DEFAULT_DIGESTS


def test_other_config_rendering_is_unchanged() -> None:
    assert digests(make_scene(OTHER)) == OTHER_DIGESTS


def test_intrinsics_have_the_focal_and_the_zoom_centre(scene: Scene) -> None:
    k = scene.intrinsics
    assert (k.fx, k.fy, k.cx, k.cy, k.width, k.height) == (525.0, 525.0, 320.0, 240.0, 640, 480)


def test_depth_is_the_plane_or_the_card_painted_there(scene: Scene) -> None:
    config = SceneConfig()
    depths = {0: config.background_depth, **{oid: getattr(config, f"{role}_depth") for role, oid in ROLE_IDS.items()}}
    for t in range(0, config.frames, 5):
        depth, ids = scene.depth[t], scene.ids[t]
        assert depth.dtype == np.float32 and depth.shape == ids.shape
        s = zoom(config, t)
        for oid, z in depths.items():
            assert np.allclose(depth[ids == oid], z / s, rtol=1e-6), (t, oid)
    assert np.ptp([zoom(config, t) for t in range(config.frames)]) > 0.01  # the zoom does change depth


def test_centroids_are_the_mean_of_back_projected_visible_pixels(scene: Scene) -> None:
    k = scene.intrinsics
    for t in (0, 17, 59):
        assert set(scene.centroids[t]) == set(ROLE_IDS.values())
        for oid, centroid in scene.centroids[t].items():
            vs, us = np.nonzero(scene.ids[t] == oid)
            z = scene.depth[t][vs, us].astype(np.float64)
            truth = np.array([((us - k.cx) * z / k.fx).mean(), ((vs - k.cy) * z / k.fy).mean(), z.mean()])
            assert np.allclose(centroid, truth, atol=1e-9), (t, oid)


@pytest.mark.parametrize(("field", "value", "named"), [
    ("focal_px", 0.0, "focal_px"), ("background_depth", float("nan"), "background_depth"),
    ("mover_depth", -1.0, "mover_depth"), ("static_depth", 6.0, "background_depth"),
    ("mover_depth", 3.2, "mover_depth"), ("stopper_depth", 3.6, "stopper_depth"),
])
def test_bad_3d_settings_are_named(field: str, value: float, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        SceneConfig(**{field: value})


def test_rotations_are_proper_and_identity_first(scene: Scene) -> None:
    assert len(scene.rotations) == len(scene.angular_velocity) == len(scene.frames)
    assert np.array_equal(scene.rotations[0], np.eye(3))
    for r in scene.rotations:
        assert np.allclose(r @ r.T, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(r), 1.0)
    assert max(np.linalg.norm(r - np.eye(3)) for r in scene.rotations) > 1e-3  # the camera does turn


def test_rotation_homography_carries_the_background_under_a_pure_pan(pan_scene: Scene) -> None:
    errors, unmoved = [], []
    for t in range(1, PURE_PAN.frames):
        vs, us = np.nonzero(pan_scene.ids[t - 1] == 0)
        pixels = np.stack([us[::97], vs[::97]]).astype(np.float64)
        truth = pixel_step(PURE_PAN, t, pixels)
        errors.append(np.linalg.norm(rotation_homography(pan_scene, t, pixels) - truth, axis=0))
        unmoved.append(np.linalg.norm(pixels - truth, axis=0))
    err, still = np.concatenate(errors), np.concatenate(unmoved)
    # the pan shifts the picture, a rotation warps it slightly toward the edges: right to first order
    assert np.median(err) < 0.25 and np.percentile(err, 95) < 1.2, (np.median(err), np.percentile(err, 95))
    assert np.median(err) < 0.15 * np.median(still)


def test_rotation_homography_matches_the_rendered_frames(pan_scene: Scene) -> None:
    h, w = pan_scene.ids[0].shape
    k = pan_scene.intrinsics.matrix
    warped_error, still_error = [], []
    for t in range(1, PURE_PAN.frames, 3):
        hom = k @ pan_scene.rotations[t] @ np.linalg.inv(k)
        warped = cv2.warpPerspective(pan_scene.frames[t - 1], hom, (w, h), flags=cv2.INTER_LINEAR).astype(np.float32)
        was_background = cv2.warpPerspective((pan_scene.ids[t - 1] == 0).view(np.uint8), hom, (w, h),
                                             flags=cv2.INTER_NEAREST) > 0
        keep = (pan_scene.ids[t] == 0) & was_background
        keep[:20], keep[-20:], keep[:, :20], keep[:, -20:] = False, False, False, False
        now = pan_scene.frames[t].astype(np.float32)
        warped_error.append(np.abs(warped - now)[keep].mean())
        still_error.append(np.abs(pan_scene.frames[t - 1].astype(np.float32) - now)[keep].mean())
    assert np.mean(warped_error) < 3.5 and np.mean(warped_error) < 0.5 * np.mean(still_error)


def test_roll_alone_is_an_exact_rotation_about_the_optical_axis() -> None:
    config = SceneConfig(width=320, height=240, focal_px=260.0, pan_amplitude=0.0, zoom_amplitude=0.0,
                         roll_degrees=3.0, frames=12)
    clip = make_scene(config)
    pixels = np.stack(np.meshgrid(np.arange(0, 320, 20), np.arange(0, 240, 20))).reshape(2, -1).astype(np.float64)
    for t in range(1, config.frames):
        assert np.abs(rotation_homography(clip, t, pixels) - pixel_step(config, t, pixels)).max() < 1e-6
        assert np.abs(clip.angular_velocity[t][:2]).max() < 1e-9
    assert max(abs(w[2]) for w in clip.angular_velocity) > 0.01


def test_angular_velocity_matches_the_image_motion(pan_scene: Scene) -> None:
    k = pan_scene.intrinsics
    centre = np.array([[k.cx], [k.cy]])
    for t in range(1, PURE_PAN.frames):
        du, dv = (pixel_step(PURE_PAN, t, centre) - centre).ravel()
        wx, wy, _ = 0.5 * (pan_scene.angular_velocity[t - 1] + pan_scene.angular_velocity[t]) / pan_scene.fps
        # a gyro's +y is a turn to the right: the world then slides left in the picture, and +x slides it down
        assert du == pytest.approx(-k.fx * wy, rel=0.02, abs=0.01), t
        assert dv == pytest.approx(k.fy * wx, rel=0.02, abs=0.01), t
    assert max(abs(w[1]) for w in pan_scene.angular_velocity) * k.fx / pan_scene.fps > 2.0  # px/frame


def test_angular_velocity_integrates_to_the_rotations(scene: Scene) -> None:
    for t in range(1, len(scene.frames)):
        turned = cv2.Rodrigues(scene.rotations[t])[0].ravel()
        mean_rate = 0.5 * (scene.angular_velocity[t - 1] + scene.angular_velocity[t])
        assert np.allclose(-turned * scene.fps, mean_rate, rtol=0.02, atol=2e-3), t
