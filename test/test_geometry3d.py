"""3D geometry of moving objects: metric depth, centroids against the synthetic scene's truth (masks bleeding
onto the background included), track velocities, and the budgeted point cloud."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from movseg_ros.camera_model import Intrinsics
from movseg_ros.geometry3d import (Track3DEstimator, backproject, depth_to_metres, object_geometry, resize_depth,
                                   sample_points)
from movseg_ros.scene import Scene, make_scene

K_SMALL = Intrinsics(100.0, 100.0, 50.0, 40.0, 100, 80)
NS_PER_FRAME = 33_333_333


@pytest.fixture(scope="module")
def scene() -> Scene:
    return make_scene()


def dilated(mask: np.ndarray, pixels: int = 5) -> np.ndarray:
    """The mask grown by `pixels` all round: a segmenter's edge bleeding onto what is behind."""
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.view(np.uint8), disc).astype(bool)


def relative_centroid_errors(clip: Scene, grow: int, depth_band: float = 0.15, every: int = 2) -> list[float]:
    """|estimated - truth| / distance of each object in every `every`-th frame, masks grown by `grow` px."""
    errors = []
    for t in range(0, len(clip.frames), every):
        for oid, centroid in clip.centroids[t].items():
            mask = clip.ids[t] == oid
            obj = object_geometry(dilated(mask, grow) if grow else mask, clip.depth[t], clip.intrinsics,
                                  depth_band=depth_band)
            assert obj.valid
            errors.append(float(np.linalg.norm(obj.centroid - centroid) / np.linalg.norm(centroid)))
    return errors


def test_16uc1_is_millimetres_with_zero_unknown() -> None:
    raw = np.array([[0, 1], [1500, 65535]], np.uint16)
    out = depth_to_metres(raw, "16UC1")
    assert out.dtype == np.float32 and np.isnan(out[0, 0])
    assert np.allclose(out[[0, 1, 1], [1, 0, 1]], [0.001, 1.5, 65.535])


def test_32fc1_is_metres_with_nan_inf_and_non_positive_unknown() -> None:
    raw = np.array([[np.nan, np.inf, -np.inf], [0.0, -2.0, 2.25]], np.float32)
    out = depth_to_metres(raw, "32FC1")
    assert out.dtype == np.float32 and np.isnan(out[:, :2]).all() and np.isnan(out[0, 2])
    assert out[1, 2] == np.float32(2.25)
    assert depth_to_metres(raw.astype(">f4"), "32FC1")[1, 2] == np.float32(2.25)  # big-endian publishers too


def test_an_unsupported_encoding_is_named_safely() -> None:
    with pytest.raises(ValueError, match=r"'rgb8\\n\\x1b\[31m'"):
        depth_to_metres(np.zeros((2, 2), np.uint8), "rgb8\n\x1b[31m")


def test_pixels_that_do_not_match_the_encoding_are_named() -> None:
    with pytest.raises(ValueError, match="16UC1 depth must be HxW uint16.*float32"):
        depth_to_metres(np.zeros((2, 2), np.float32), "16UC1")
    with pytest.raises(ValueError, match="32FC1 depth must be HxW float32"):
        depth_to_metres(np.zeros((2, 2, 1), np.float32), "32FC1")


def test_backproject_inverts_the_projection() -> None:
    pts = backproject(np.array([50.0, 150.0]), np.array([40.0, 0.0]), np.array([2.0, 4.0]), K_SMALL)
    assert pts.dtype == np.float32 and pts.shape == (2, 3)
    assert np.allclose(pts, [[0.0, 0.0, 2.0], [4.0, -1.6, 4.0]])


def test_resize_depth_is_nearest_and_centre_aligned() -> None:
    depth = np.array([[1.0, 2.0, np.nan], [4.0, 5.0, 6.0]], np.float32)
    up = resize_depth(depth, 6, 4)
    assert up.shape == (4, 6) and up.dtype == np.float32
    assert np.array_equal(up, np.kron(depth, np.ones((2, 2), np.float32)), equal_nan=True)
    down = resize_depth(np.kron(depth, np.ones((2, 2), np.float32)), 3, 2)
    assert np.array_equal(down, depth, equal_nan=True)
    edge = np.where(np.arange(64) < 30, 1.0, 5.0).astype(np.float32)[None].repeat(8, 0)
    assert set(np.unique(resize_depth(edge, 47, 5))) == {1.0, 5.0}  # never a value between the two sides


def test_centroids_match_the_scene_truth(scene: Scene) -> None:
    assert np.median(relative_centroid_errors(scene, grow=0)) <= 0.01


def test_masks_bleeding_onto_the_background_stay_within_five_percent(scene: Scene) -> None:
    errors = relative_centroid_errors(scene, grow=5, every=3)
    assert np.median(errors) <= 0.05, np.median(errors)
    naive = relative_centroid_errors(scene, grow=5, depth_band=np.inf, every=3)  # no depth gate: the leak drags it away
    assert np.median(naive) > 0.05


def test_extent_of_a_flat_card() -> None:
    mask = np.zeros((80, 100), bool)
    mask[20:60, 10:90] = True
    obj = object_geometry(mask, np.full((80, 100), 2.0, np.float32), K_SMALL)
    assert obj.valid and obj.points == 3200
    assert np.allclose(obj.centroid, [(49.5 - 50) * 0.02, (39.5 - 40) * 0.02, 2.0], atol=1e-6)
    # 5th-95th percentile of 80 columns x 40 rows, at 2 cm per pixel
    assert np.allclose(obj.extent, [0.9 * 79 * 0.02, 0.9 * 39 * 0.02, 0.0], atol=0.02)


def test_too_little_depth_is_invalid() -> None:
    mask = np.zeros((80, 100), bool)
    mask[10:20, 10:20] = True
    depth = np.full((80, 100), np.nan, np.float32)
    depth[10:12, 10:20] = 3.0  # 20 pixels known
    assert object_geometry(mask, depth, K_SMALL, min_points=20).valid
    thin = object_geometry(mask, depth, K_SMALL, min_points=21)
    assert not thin.valid and thin.points == 20
    assert not (thin.centroid.any() or thin.extent.any() or thin.velocity.any())


def test_sizes_that_disagree_are_named() -> None:
    with pytest.raises(ValueError, match=r"mask shape \(80, 99\) differs from depth shape \(80, 100\)"):
        object_geometry(np.ones((80, 99), bool), np.ones((80, 100), np.float32), K_SMALL)
    with pytest.raises(ValueError, match="intrinsics are for 100x80, depth is 50x40"):
        sample_points(np.ones((40, 50), np.uint16), [1], np.ones((40, 50), np.float32), K_SMALL, 10)


def test_velocity_follows_the_truth_and_is_zero_on_first_sighting(scene: Scene) -> None:
    mover = scene.roles["mover"]
    estimator = Track3DEstimator()
    errors, speeds = [], []
    for t in range(30):
        millimetres = np.round(scene.depth[t] * 1000.0).astype(np.uint16)  # as a 16UC1 camera would send it
        depth = depth_to_metres(millimetres, "16UC1")
        out = estimator.update(t * NS_PER_FRAME, {mover: dilated(scene.ids[t] == mover)}, depth, scene.intrinsics)
        if t == 0:
            assert out[mover].valid and not out[mover].velocity.any()
            continue
        truth = (scene.centroids[t][mover] - scene.centroids[t - 1][mover]) * 1e9 / NS_PER_FRAME
        errors.append(float(np.linalg.norm(out[mover].velocity - truth)))
        speeds.append(float(np.linalg.norm(truth)))
    assert np.median(speeds) > 0.3  # m/s: the mover does move
    # millimetre depth steps alone move a centroid ~0.5 mm, i.e. up to 0.03 m/s at 30 fps
    assert np.median(errors) < 0.01 and max(errors) < 0.05, (np.median(errors), max(errors))


def test_a_gap_or_forget_restarts_the_velocity() -> None:
    depth = np.full((80, 100), 2.0, np.float32)

    def square(left: int) -> dict[int, np.ndarray]:
        mask = np.zeros((80, 100), bool)
        mask[30:50, left : left + 20] = True
        return {7: mask}

    estimator = Track3DEstimator(max_gap_s=0.5)
    estimator.update(0, square(10), depth, K_SMALL)
    moved = estimator.update(100_000_000, square(12), depth, K_SMALL)[7]
    assert moved.velocity == pytest.approx([0.4, 0.0, 0.0], abs=1e-5)  # 2 px at 2 cm/px in 0.1 s
    assert not estimator.update(700_000_000, square(14), depth, K_SMALL)[7].velocity.any()  # 0.6 s gap
    estimator.forget([7])
    assert estimator.remembered == 0
    assert not estimator.update(800_000_000, square(16), depth, K_SMALL)[7].velocity.any()
    assert not estimator.update(750_000_000, square(18), depth, K_SMALL)[7].velocity.any()  # stamps went back
    assert not estimator.update(750_000_000, square(20), depth, K_SMALL)[7].velocity.any()  # a repeated stamp


def test_velocity_spans_a_sighting_without_depth() -> None:
    depth = np.full((80, 100), 2.0, np.float32)
    masks = [np.zeros((80, 100), bool) for _ in range(3)]
    masks[0][30:50, 10:30] = True
    masks[2][30:50, 14:34] = True  # masks[1] is empty: invalid
    estimator = Track3DEstimator()
    for i, mask in enumerate(masks):
        out = estimator.update(i * 100_000_000, {3: mask}, depth, K_SMALL)[3]
    assert out.velocity == pytest.approx([0.4, 0.0, 0.0], abs=1e-5)  # 4 px over 0.2 s


def test_memory_holds_only_recent_tracks() -> None:
    depth = np.full((80, 100), 2.0, np.float32)
    mask = np.zeros((80, 100), bool)
    mask[30:50, 30:50] = True
    estimator = Track3DEstimator(max_gap_s=1.0)
    for i in range(100):  # a new track id every 0.1 s
        estimator.update(i * 100_000_000, {i: mask}, depth, K_SMALL)
    assert estimator.remembered <= 11


def test_sample_points_respects_budget_and_ids_and_lies_on_the_surface(scene: Scene) -> None:
    t, k = 20, scene.intrinsics
    ids, depth = scene.ids[t], scene.depth[t]
    wanted = [scene.roles["mover"], scene.roles["stopper"]]
    for budget in (1, 37, 500, 4000):
        pts = sample_points(ids, set(wanted), depth, k, budget)
        assert pts.dtype == np.float32 and pts.shape[1] == 4 and 0.5 * budget <= len(pts) <= budget
        assert set(np.unique(pts[:, 3]).astype(int)) <= set(wanted)
        us = np.round(pts[:, 0] * k.fx / pts[:, 2] + k.cx).astype(int)
        vs = np.round(pts[:, 1] * k.fy / pts[:, 2] + k.cy).astype(int)
        assert np.array_equal(pts[:, 2], depth[vs, us]) and np.array_equal(pts[:, 3], ids[vs, us])
        assert np.array_equal(pts, sample_points(ids, wanted, depth, k, budget))
    for oid in wanted:  # spread evenly: each object's sample sits where the object is
        mine = pts[pts[:, 3] == oid, :3]
        truth = scene.centroids[t][oid]
        assert np.linalg.norm(mine.mean(axis=0) - truth) < 0.01 * np.linalg.norm(truth)


def test_sample_points_keeps_all_when_under_budget_and_handles_thin_shapes() -> None:
    labels = np.zeros((80, 100), np.uint16)
    labels[7, 5:95] = 4  # a one-pixel line: a coarse grid would miss it
    depth = np.full((80, 100), 3.0, np.float32)
    depth[7, 5:10] = np.nan
    assert len(sample_points(labels, [4], depth, K_SMALL, 1000)) == 85
    assert len(sample_points(labels, [4], depth, K_SMALL, 20)) == 20
    assert sample_points(labels, [4], depth, K_SMALL, 0).shape == (0, 4)
    assert sample_points(labels, [], depth, K_SMALL, 10).shape == (0, 4)


def test_the_camera_rotation_drops_out_of_the_velocity() -> None:
    from movseg_ros.camera_model import Intrinsics
    from movseg_ros.geometry3d import Track3DEstimator
    from movseg_ros.rotation_prior import so3_exp

    k = Intrinsics(200.0, 200.0, 63.5, 47.5, 128, 96)

    def seen_at(point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A static card around `point` (camera frame): its mask and depth."""
        u, v = k.fx * point[0] / point[2] + k.cx, k.fy * point[1] / point[2] + k.cy
        mask = np.zeros((96, 128), bool)
        mask[int(v) - 8:int(v) + 8, int(u) - 8:int(u) + 8] = True
        return mask, np.full((96, 128), point[2], np.float32)

    still = np.array([0.1, 0.0, 3.0])  # a static object; the camera turns 3 degrees about y in 0.1 s
    turn = so3_exp(np.array([0.0, np.radians(3.0), 0.0]))
    (m0, d0), (m1, d1) = seen_at(still), seen_at(turn @ still)
    plain, compensated = Track3DEstimator(), Track3DEstimator()
    for est in (plain, compensated):
        est.update(0, {1: m0}, d0, k)
    v_plain = plain.update(100_000_000, {1: m1}, d1, k)[1].velocity
    v_comp = compensated.update(100_000_000, {1: m1}, d1, k, rotation=turn)[1].velocity
    assert np.linalg.norm(v_plain) > 1.0  # the camera's turn alone looks like 1.5 m/s
    assert np.linalg.norm(v_comp) < 0.2 * np.linalg.norm(v_plain), (v_plain, v_comp)


def test_a_mask_s_pixels_are_found_within_its_box_exactly_as_in_the_whole_image() -> None:
    from movseg_ros.geometry3d import _nonzero_in_box

    rng = np.random.default_rng(5)
    for mask in (rng.random((48, 64)) < 0.01, np.zeros((48, 64), bool), np.pad(np.ones((3, 5), bool), ((40, 5), (0, 59)))):
        got, want = _nonzero_in_box(mask), np.nonzero(mask)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_a_large_mask_keeps_its_exact_centroid_and_its_extent_from_a_sample() -> None:
    from movseg_ros.geometry3d import GEOMETRY_SAMPLES

    k = Intrinsics(525.0, 525.0, 319.5, 239.5, 640, 480)
    vs, us = np.mgrid[0:480, 0:640]
    depth = (3.0 + 0.0005 * us + 0.0002 * vs).astype(np.float32)  # a tilted plane: every pixel differs
    depth[::7, ::5] = np.nan  # and some unknown
    mask = np.zeros((480, 640), bool)
    mask[60:400, 100:560] = True  # 156,400 pixels: far over the sample
    assert mask.sum() > 10 * GEOMETRY_SAMPLES
    obj = object_geometry(mask, depth, k)
    known = mask & np.isfinite(depth)
    pts = backproject(us[known], vs[known], depth[known], k).astype(np.float64)
    assert obj.valid and obj.points == int(known.sum())
    assert np.allclose(obj.centroid, pts.mean(axis=0), atol=1e-5)  # all pixels, not a sample: velocities stay smooth
    exact = np.percentile(pts, 95, axis=0) - np.percentile(pts, 5, axis=0)
    assert np.allclose(obj.extent, exact, rtol=0.01)
