"""The synthetic scene: deterministic, and its truth agrees with what is rendered."""

from __future__ import annotations


import cv2
import numpy as np
import pytest

from movseg_ros.scene import Scene, SceneConfig, camera_transform, make_scene

SMALL = SceneConfig(width=320, height=240, frames=20, stop_frame=10, seed=3)


@pytest.fixture(scope="module")
def scene() -> Scene:
    return make_scene(SMALL)


def world_centroid(mask: np.ndarray, camera: np.ndarray) -> np.ndarray:
    """Mean world position of a mask's pixels, undoing the camera transform."""
    ys, xs = np.nonzero(mask)
    inv = cv2.invertAffineTransform(camera)
    return inv @ np.array([xs.mean(), ys.mean(), 1.0])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_same_seed_gives_identical_clip(scene: Scene) -> None:
    again = make_scene(SMALL)
    assert all(np.array_equal(a, b) for a, b in zip(scene.frames, again.frames))
    assert all(np.array_equal(a, b) for a, b in zip(scene.ids, again.ids))


def test_different_seed_gives_different_clip(scene: Scene) -> None:
    other = make_scene(SceneConfig(width=320, height=240, frames=20, stop_frame=10, seed=4))
    assert not np.array_equal(scene.frames[0], other.frames[0])


def test_shapes_and_types(scene: Scene) -> None:
    assert len(scene.frames) == len(scene.ids) == len(scene.moving) == SMALL.frames
    assert scene.frames[0].shape == (240, 320, 3) and scene.frames[0].dtype == np.uint8
    assert scene.ids[0].shape == (240, 320) and scene.ids[0].dtype == np.uint16
    assert set(np.unique(scene.ids[0])) == {0, *scene.roles.values()}
    assert scene.fps == SMALL.fps


def test_moving_flags_follow_roles(scene: Scene) -> None:
    r = scene.roles
    for t, flags in enumerate(scene.moving):
        assert flags[r["mover"]] is True
        assert flags[r["stopper"]] is (t < SMALL.stop_frame)
        assert flags[r["static"]] is False


def test_flags_agree_with_world_motion_of_rendered_pixels(scene: Scene) -> None:
    cams = [camera_transform(SMALL, t) for t in range(SMALL.frames)]
    for oid in scene.roles.values():
        for t in range(SMALL.frames - 1):
            step = world_centroid(scene.ids[t + 1] == oid, cams[t + 1]) - world_centroid(scene.ids[t] == oid, cams[t])
            moved = float(np.linalg.norm(step))
            if scene.moving[t][oid]:
                assert moved > 2.0, (oid, t, moved)
            else:
                assert moved < 0.5, (oid, t, moved)


def test_static_object_stays_put_in_world(scene: Scene) -> None:
    static = scene.roles["static"]
    cams = [camera_transform(SMALL, t) for t in range(SMALL.frames)]
    first = world_centroid(scene.ids[0] == static, cams[0])
    image_path = []
    for t in range(SMALL.frames):
        assert np.linalg.norm(world_centroid(scene.ids[t] == static, cams[t]) - first) < 0.5
        image_path.append(np.argwhere(scene.ids[t] == static).mean(axis=0))
    assert np.ptp(np.array(image_path), axis=0).max() > 3.0  # ... while the camera moves it in the image


def test_static_object_moves_exactly_with_background(scene: Scene) -> None:
    h, w = scene.ids[0].shape
    for t in range(SMALL.frames - 1):
        a = np.vstack([camera_transform(SMALL, t), [0, 0, 1]])
        b = np.vstack([camera_transform(SMALL, t + 1), [0, 0, 1]])
        ego = (b @ np.linalg.inv(a))[:2]  # frame t pixels -> frame t+1 pixels

        def carried(oid: int) -> float:
            warped = cv2.warpAffine((scene.ids[t] == oid).astype(np.float32), ego, (w, h)) > 0.5
            return iou(warped, scene.ids[t + 1] == oid)

        assert carried(scene.roles["static"]) > 0.95
        assert carried(scene.roles["mover"]) < 0.9  # an independent mover does not follow the camera


def test_objects_are_sized_and_inside_frame(scene: Scene) -> None:
    for ids in scene.ids:
        h, w = ids.shape
        for oid in scene.roles.values():
            mask = ids == oid
            assert 0.03 <= mask.mean() <= 0.08
            assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def test_objects_are_non_convex_and_look_different(scene: Scene) -> None:
    means = []
    for oid in scene.roles.values():
        mask = scene.ids[0] == oid
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        hull_area = cv2.contourArea(cv2.convexHull(max(contours, key=cv2.contourArea)))
        assert cv2.contourArea(max(contours, key=cv2.contourArea)) / hull_area < 0.96
        means.append(scene.frames[0][mask].mean(axis=0))
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.linalg.norm(means[i] - means[j]) > 60


def test_rejects_bad_config() -> None:
    with pytest.raises(ValueError):
        SceneConfig(width=10, height=10)
    with pytest.raises(ValueError):
        SceneConfig(frames=0)
