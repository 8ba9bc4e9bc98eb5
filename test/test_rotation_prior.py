"""The robot's rotation as an ego-motion prior: homography, gyro and odometry, conventions, the prior-guided fit."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from movseg_ros.camera_model import Intrinsics
from movseg_ros.clip_buffer import ClipBuffer
from movseg_ros.ego_motion import EgoMotion, predicted_flow
from movseg_ros.flow import DISFlow, DISFlowConfig
from movseg_ros.frame import Frame
from movseg_ros.rotation_prior import (OPTICAL_FROM_BODY, OPTICAL_FROM_BODY_RPY_DEGREES, GyroIntegrator,
                                       OdometryOrientations, camera_rotation, frame_rotation,
                                       rotation_from_rpy_degrees, rotation_homography, so3_exp)
from movseg_ros.segmenters.geometric import GeometricConfig, GeometricSegmenter
from movseg_ros.synth.pan_clip import PanClip, PanClipConfig, generate_pan_clip

K = Intrinsics(300.0, 310.0, 159.5, 119.5, 320, 240)
MS = 1_000_000


def test_so3_exp_is_the_rotation_about_the_vector() -> None:
    for w in ([0.3, -0.2, 0.5], [1e-10, 0.0, 0.0], [0.0, 0.0, math.pi / 2]):
        assert np.allclose(so3_exp(np.array(w)), Rotation.from_rotvec(w).as_matrix(), atol=1e-12)


def test_rotation_homography_matches_projected_points() -> None:
    rng = np.random.default_rng(0)
    r = Rotation.from_rotvec([0.02, -0.05, 0.03]).as_matrix()
    points = rng.uniform([-2, -2, 3], [2, 2, 9], (50, 3))  # in the previous camera frame
    before = points @ K.matrix.T
    after = (points @ r.T) @ K.matrix.T  # the same points in this frame: R X
    h = rotation_homography(r, K)
    mapped = cv2.perspectiveTransform((before[:, :2] / before[:, 2:])[None], h)[0]
    assert np.allclose(mapped, after[:, :2] / after[:, 2:], atol=1e-9)


def constant_gyro(rate: np.ndarray, start_ns: int = 0, stop_ns: int = 500 * MS, step_ns: int = 5 * MS,
                  integrator: GyroIntegrator | None = None) -> GyroIntegrator:
    """A gyro turning at a constant `rate` (rad/s), sampled every `step_ns`."""
    gyro = integrator or GyroIntegrator()
    for stamp in range(start_ns, stop_ns + 1, step_ns):
        gyro.add(stamp, rate)
    return gyro


def test_gyro_integration_of_a_constant_rate_is_the_exponential_map() -> None:
    rate = np.array([0.4, -1.1, 0.25])
    gyro = constant_gyro(rate)
    t0, t1 = 101 * MS + 300, 134 * MS + 700  # between samples at both ends
    assert np.allclose(gyro.rotation(t0, t1), so3_exp(rate * (t1 - t0) * 1e-9), atol=1e-12)
    assert np.allclose(gyro.rotation(200 * MS, 200 * MS), np.eye(3))


def test_gyro_composes_changing_rates_in_the_body_frame() -> None:
    """A turn about x, then one about y: the body frame's rotation is Rx @ Ry (body-frame composition)."""
    gyro = GyroIntegrator()
    for stamp in range(0, 100 * MS, MS):
        gyro.add(stamp, [2.0, 0.0, 0.0])
    for stamp in range(100 * MS, 200 * MS + 1, MS):
        gyro.add(stamp, [0.0, 3.0, 0.0])
    expected = so3_exp([0.2, 0.0, 0.0]) @ so3_exp([0.0, 0.3, 0.0])
    assert np.allclose(gyro.rotation(0, 200 * MS), expected, atol=2e-3)  # one 1 ms step blends the two rates


def test_gyro_gives_none_where_the_samples_do_not_cover_the_interval() -> None:
    gyro = constant_gyro(np.array([0.0, 1.0, 0.0]), start_ns=100 * MS, stop_ns=300 * MS)
    assert gyro.rotation(50 * MS, 150 * MS) is None  # starts before the first sample
    assert gyro.rotation(250 * MS, 360 * MS) is None  # ends more than max_gap (50 ms) after the last
    gyro.add(400 * MS, [0.0, 1.0, 0.0])  # 100 ms without a sample
    assert gyro.rotation(290 * MS, 350 * MS) is None
    assert gyro.rotation(200 * MS, 300 * MS) is not None
    with pytest.raises(ValueError, match="angular velocity"):
        gyro.add(405 * MS, [0.0, float("nan"), 0.0])


def test_gyro_memory_is_bounded_and_a_stamp_going_back_starts_over() -> None:
    gyro = constant_gyro(np.array([0.1, 0.0, 0.0]), stop_ns=5000 * MS, integrator=GyroIntegrator(window_s=2.0))
    assert len(gyro._samples.stamps) <= 401
    assert gyro.rotation(1000 * MS, 1100 * MS) is None and gyro.rotation(4000 * MS, 4100 * MS) is not None
    gyro.add(10 * MS, [0.1, 0.0, 0.0])  # a bag looped: the old history is gone
    assert gyro.rotation(4000 * MS, 4100 * MS) is None


def test_odometry_slerps_between_orientations() -> None:
    odom = OdometryOrientations()
    yaw_rate = 0.8  # rad/s about z, sampled at 20 Hz
    for stamp in range(0, 1000 * MS + 1, 50 * MS):
        odom.add(stamp, Rotation.from_euler("z", yaw_rate * stamp * 1e-9).as_quat())  # (x, y, z, w)
    t0, t1 = 112 * MS, 463 * MS
    expected = Rotation.from_euler("z", yaw_rate * (t1 - t0) * 1e-9).as_matrix()
    assert np.allclose(odom.rotation(t0, t1), expected, atol=1e-9)
    assert odom.rotation(900 * MS, 1300 * MS) is None  # more than max_gap (200 ms) past the last
    assert odom.rotation(900 * MS, 1100 * MS) is not None  # the last orientation holds for up to max_gap
    with pytest.raises(ValueError, match="quaternion"):
        odom.add(1050 * MS, [0.0, 0.0, 0.0, 0.0])


def test_odometry_and_gyro_agree_on_the_direction_of_a_turn() -> None:
    """Orientations Q(t) = exp(w t) and the gyro reading w give the same change Q(t0)^T Q(t1)."""
    rate = np.array([0.3, -0.6, 0.9])
    odom = OdometryOrientations()
    for stamp in range(0, 500 * MS + 1, 20 * MS):
        odom.add(stamp, Rotation.from_rotvec(rate * stamp * 1e-9).as_quat())
    assert np.allclose(odom.rotation(40 * MS, 300 * MS), constant_gyro(rate).rotation(40 * MS, 300 * MS), atol=1e-9)


def test_camera_from_sensor_conventions() -> None:
    forward, left, up = np.eye(3)
    assert np.allclose(OPTICAL_FROM_BODY @ forward, [0, 0, 1])  # body x forward is optical z
    assert np.allclose(OPTICAL_FROM_BODY @ left, [-1, 0, 0])  # body y left is optical -x
    assert np.allclose(OPTICAL_FROM_BODY @ up, [0, -1, 0])  # body z up is optical -y
    assert np.allclose(rotation_from_rpy_degrees(*OPTICAL_FROM_BODY_RPY_DEGREES), OPTICAL_FROM_BODY)
    assert np.allclose(rotation_from_rpy_degrees(-90, 0, -90), OPTICAL_FROM_BODY.T)  # the usual body-to-optical tf
    assert np.allclose(rotation_from_rpy_degrees(0, 0, 90) @ forward, left)  # yaw turns x towards y
    assert np.allclose(rotation_from_rpy_degrees(10, 20, 30),
                       Rotation.from_euler("xyz", [10, 20, 30], degrees=True).as_matrix())  # fixed axes x, y, z
    # the robot yawing left (about body z) is the camera turning about optical -y
    yaw = so3_exp([0.0, 0.0, 0.1])
    assert np.allclose(camera_rotation(yaw, OPTICAL_FROM_BODY), so3_exp([0.0, -0.1, 0.0]))


def test_a_robot_turning_left_moves_the_view_right() -> None:
    """Frame.rotation from a left yaw: points ahead drift to the right of the image."""
    r = frame_rotation(so3_exp([0.0, 0.0, 0.05]), OPTICAL_FROM_BODY)
    centre = np.array([K.cx, K.cy, 1.0])
    moved = rotation_homography(r, K) @ centre
    assert moved[0] / moved[2] - K.cx > 10.0 and abs(moved[1] / moved[2] - K.cy) < 1e-6


@pytest.fixture(scope="module")
def pan() -> PanClip:
    """A small fast-pan clip (skimage photos: no data set needed) with a large mover."""
    return generate_pan_clip(PanClipConfig(width=192, height=144, frames=4, pan_px=(6.0, 9.0), tilt_px=3.0,
                                           object_area=(0.35, 0.45), texture_source="skimage"), 3)


def gyro_frame_rotation(clip: PanClip, t: int) -> np.ndarray:
    """Frame t's rotation from the clip's gyro samples, as the node would make it."""
    gyro = GyroIntegrator()
    for stamp, w in zip(clip.gyro_stamps_ns, clip.gyro):
        gyro.add(int(stamp), w)
    return frame_rotation(gyro.rotation(int(clip.stamps_ns[t - 1]), int(clip.stamps_ns[t])), clip.camera_from_sensor)


def test_gyro_to_homography_predicts_the_rendered_pan(pan: PanClip) -> None:
    """gyro samples -> Frame.rotation -> K R K^-1 moves frame 1's background onto frame 2's."""
    h, w = pan.images.shape[1:3]
    hom = rotation_homography(gyro_frame_rotation(pan, 2), pan.intrinsics)
    assert np.abs(predicted_flow(hom, (h, w)) - predicted_flow(pan.truth_homography(2), (h, w))).max() < 0.3
    warped = cv2.warpPerspective(pan.images[1], hom, (w, h)).astype(np.float32)
    seen = cv2.warpPerspective(pan.background[1].astype(np.uint8), hom, (w, h), flags=cv2.INTER_NEAREST) > 0
    inner = np.zeros((h, w), bool)
    inner[8:-8, 8:-8] = True
    both = cv2.erode((seen & pan.background[2] & inner).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    error = np.abs(warped - pan.images[2])[both].mean()
    unmoved = np.abs(pan.images[1].astype(np.float32) - pan.images[2])[both].mean()
    assert error < 4.0 and unmoved > 4 * error  # sensor noise (sigma 2) is what is left


def rotation_flow(shape: tuple[int, int], obj_shift: tuple[float, float],
                  box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flow (this frame to the previous) of a panning camera, an object inside `box` moving its own way.

    Returns the flow, the object's mask and the true homography.
    """
    h, w = shape
    k = K.scaled(w, h)
    truth = np.linalg.inv(rotation_homography(so3_exp([0.01, 0.04, 0.005]), k))
    flow = predicted_flow(truth, shape)
    inside = np.zeros(shape, bool)
    x0, y0, x1, y1 = box
    inside[y0:y1, x0:x1] = True
    flow[inside] = obj_shift
    flow += np.random.default_rng(1).normal(0.0, 0.2, flow.shape).astype(np.float32)  # flow noise
    return flow, inside, truth


def background_residual(ego: EgoMotion, flow: np.ndarray, background: np.ndarray) -> float:
    return float(np.median(np.linalg.norm(flow - ego.flow, axis=-1)[background]))


def test_a_prior_keeps_a_dominant_object_from_taking_over() -> None:
    """A camera following an object that fills 70 % of the view, reaching the border: image-only takes the object."""
    flow, inside, truth = rotation_flow((120, 160), (0.5, 0.0), (0, 10, 130, 120))
    assert inside.mean() > 0.7
    image_only = EgoMotion.fit(flow)
    bias = np.array([[1.0, 0.0, 1.5], [0.0, 1.0, -1.0], [0.0, 0.0, 1.0]])  # a gyro bias: the prior is 1.8 px off
    guided = EgoMotion.fit(flow, prior=bias @ truth)
    assert background_residual(image_only, flow, ~inside) > 5.0
    assert background_residual(guided, flow, ~inside) < 0.4  # the flow refined the prior ...
    assert background_residual(EgoMotion(bias @ truth, predicted_flow(bias @ truth, flow.shape[:2]), 0.0),
                               flow, ~inside) > 1.5  # ... which alone would be off by its bias


def test_a_gyro_prior_finds_the_background_behind_an_object_the_camera_follows() -> None:
    """A rendered pan following an object that fills ~half the view and more of the grid: DIS flow, then the fits."""
    clip = generate_pan_clip(PanClipConfig(width=192, height=144, frames=3, pan_px=(6.0, 9.0), tilt_px=3.0,
                                           object_area=(0.7, 0.7), object_speed=(0.0, 0.0),
                                           texture_source="skimage"), 0)
    grey = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in clip.images]
    flow = DISFlow(DISFlowConfig(preset="medium", scale=1.0)).flow_grey(grey[2], grey[1])
    background = clip.steady_background(2, flow.shape[:2])
    prior = np.linalg.inv(rotation_homography(gyro_frame_rotation(clip, 2), clip.intrinsics))  # flow's direction
    image_only = background_residual(EgoMotion.fit(flow), flow, background)
    guided = background_residual(EgoMotion.fit(flow, prior=prior), flow, background)
    assert image_only > 3.0 and guided < 0.5


def test_a_prior_nothing_agrees_with_stands() -> None:
    flow, _, truth = rotation_flow((120, 160), (0.5, 0.0), (0, 10, 130, 120))
    far_off = np.array([[1.0, 0.0, 30.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ truth
    assert np.allclose(EgoMotion.fit(flow, prior=far_off).homography, far_off)
    tiny = flow[:20, :20]  # four grid points: too few to fit anything to
    assert np.allclose(EgoMotion.fit(tiny, prior=truth).homography, truth)


def segment_clip(clip: PanClip, config: GeometricConfig, rotations: bool, intrinsics: bool = True) -> list:
    """The clip through the geometric segmenter; frames carry the gyro's rotation and the intrinsics when asked."""
    seg, buf = GeometricSegmenter(config), ClipBuffer(4)
    out = []
    for t, image in enumerate(clip.images):
        rotation = gyro_frame_rotation(clip, t) if rotations and t > 0 else None
        buf.push(Frame(image, int(clip.stamps_ns[t]), "cam", t, intrinsics=clip.intrinsics if intrinsics else None,
                       rotation=rotation))
        (r,) = seg.process(buf)
        out.append(r)
    return out


LIGHT = GeometricConfig(appearance="none", refine_radius=0)  # no torch needed, and quick


def test_the_segmenter_turns_frame_rotation_into_its_ego_motion(pan: PanClip) -> None:
    """Its motion context (previous to this frame) follows the true pan; the wrong direction would be 12+ px off."""
    results = segment_clip(pan, LIGHT, rotations=True)
    h, w = pan.images.shape[1:3]
    for t in (1, 2, 3):
        got = predicted_flow(results[t].motion.homography, (h, w))
        error = np.linalg.norm(got - predicted_flow(pan.truth_homography(t), (h, w)), axis=-1)[pan.background[t]]
        assert np.median(error) < 0.5 and error.max() < 2.0


def test_static_camera_skips_ego_motion(pan: PanClip) -> None:
    results = segment_clip(pan, GeometricConfig(appearance="none", refine_radius=0, static_camera=True), rotations=True)
    assert all(np.array_equal(r.motion.homography, np.eye(3)) for r in results[1:])


def test_without_a_rotation_nothing_changes(pan: PanClip) -> None:
    """Intrinsics alone (or a rotation without intrinsics) give no prior: the image-only results, bit for bit."""
    plain = segment_clip(pan, LIGHT, rotations=False, intrinsics=False)
    for variant in (segment_clip(pan, LIGHT, rotations=False), segment_clip(pan, LIGHT, rotations=True, intrinsics=False)):
        for a, b in zip(plain[1:], variant[1:]):
            assert np.array_equal(a.motion.homography, b.motion.homography)
            assert len(a.detections) == len(b.detections)
            assert all(np.array_equal(x.mask, y.mask) for x, y in zip(a.detections, b.detections))


def test_gyro_samples_ending_just_before_t1_hold_the_last_rate() -> None:
    from movseg_ros.rotation_prior import GyroIntegrator, so3_exp

    gyro = GyroIntegrator(max_gap_s=0.05)
    w = np.array([0.0, 0.5, 0.1])
    for t in range(0, 97_000_000, 5_000_000):  # 200 Hz up to 95 ms
        gyro.add(t, w)
    got = gyro.rotation(10_000_000, 100_000_000)  # the sample after 100 ms has not come yet
    assert got is not None and np.allclose(got, so3_exp(w * 0.09), atol=1e-9)
    assert gyro.rotation(10_000_000, 150_000_000) is None  # 55 ms past the last sample: not covered
