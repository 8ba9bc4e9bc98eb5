"""The camera's ego-motion from a flow field: RANSAC homography, exclusions, the border prior."""

from __future__ import annotations

import cv2
import numpy as np

from movseg_ros.ego_motion import EgoMotion, predicted_flow, rescale_homography

H, W = 120, 160


def flow_field(camera: tuple[float, float], obj: tuple[float, float] | None = None,
               box: tuple[int, int, int, int] = (0, 0, 0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """Camera translation everywhere, and `obj`'s own motion inside `box` (x0, y0, x1, y1)."""
    flow = np.empty((H, W, 2), np.float32)
    flow[...] = camera
    inside = np.zeros((H, W), bool)
    x0, y0, x1, y1 = box
    inside[y0:y1, x0:x1] = True
    if obj is not None:
        flow[inside] = obj
    return flow, inside


def test_pure_camera_translation_is_recovered() -> None:
    flow, _ = flow_field((3.0, -2.0))
    ego = EgoMotion.fit(flow)
    assert np.allclose(ego.flow, flow, atol=1e-3)
    assert ego.inlier_ratio > 0.99


def test_a_small_object_does_not_move_the_estimate() -> None:
    flow, inside = flow_field((3.0, -2.0), obj=(-4.0, 0.0), box=(60, 40, 90, 70))
    ego = EgoMotion.fit(flow)
    assert np.allclose(ego.flow[~inside], (3.0, -2.0), atol=1e-2)
    assert np.linalg.norm(flow - ego.flow, axis=-1)[inside].min() > 6.0  # the object stands out


def test_a_dominant_central_object_is_not_taken_for_the_camera() -> None:
    """A camera following an object that fills 60 % of the frame: the border tells the camera's motion."""
    flow, inside = flow_field((6.0, 0.0), obj=(0.0, 0.0), box=(16, 12, 144, 108))
    assert inside.mean() > 0.5
    ego = EgoMotion.fit(flow)
    assert np.allclose(ego.flow[~inside], (6.0, 0.0), atol=1e-2)


def test_excluded_pixels_do_not_vote() -> None:
    # Without help the majority (the object, 60 %) wins; told where the object was, it does not.
    flow, inside = flow_field((0.0, 4.0), obj=(5.0, 0.0), box=(0, 0, 100, 120))
    assert not np.allclose(EgoMotion.fit(flow).flow[~inside], (0.0, 4.0), atol=1e-2)
    ego = EgoMotion.fit(flow, exclude=inside)
    assert np.allclose(ego.flow[~inside], (0.0, 4.0), atol=1e-2)


def test_blank_flow_means_no_camera_motion() -> None:
    ego = EgoMotion.fit(np.full((H, W, 2), np.nan, np.float32))
    assert np.array_equal(ego.homography, np.eye(3)) and ego.inlier_ratio == 0.0


def test_rescaled_homography_predicts_the_same_motion_at_another_size() -> None:
    zoom = np.array([[1.05, 0.0, -4.0], [0.0, 1.05, -3.0], [0.0, 0.0, 1.0]])
    small = predicted_flow(zoom, (H, W))
    big = predicted_flow(rescale_homography(zoom, (H, W), (2 * H, 2 * W)), (2 * H, 2 * W))
    assert np.allclose(big[::2, ::2], 2 * small, atol=1e-3)


def test_predicted_flow_is_the_homography_at_every_pixel() -> None:
    hom = np.array([[1.02, 0.01, 3.5], [-0.015, 0.98, -2.0], [2e-5, -3e-5, 1.0]])
    flow = predicted_flow(hom, (30, 40))
    ys, xs = np.mgrid[0:30, 0:40].astype(np.float64)
    points = np.stack([xs, ys], -1).reshape(1, -1, 2)
    moved = cv2.perspectiveTransform(points, hom).reshape(30, 40, 2)
    assert flow.shape == (30, 40, 2) and flow.dtype == np.float32
    assert np.allclose(flow, moved - np.stack([xs, ys], -1), atol=1e-4)
