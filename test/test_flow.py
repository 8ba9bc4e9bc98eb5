"""DIS optical flow and the flow-image encoding."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from core_helpers import textured, translate

from movseg_ros.flow import SPARSE_MIN_PIXELS, DISFlow, DISFlowConfig, flow_to_image, make_dis

MARGIN = 24  # pixels near the border see content that came in from outside


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return textured(240, 320, seed=1)


def interior_epe(flow: np.ndarray, expected: tuple[float, float]) -> float:
    """Mean end-point error against a constant flow, away from the borders."""
    err = flow[MARGIN:-MARGIN, MARGIN:-MARGIN] - np.asarray(expected, np.float32)
    return float(np.linalg.norm(err, axis=-1).mean())


@pytest.mark.parametrize("scale", [1.0, 0.5])
@pytest.mark.parametrize("shift", [(2.3, -1.7), (-3.6, 0.8)])
def test_dis_recovers_a_subpixel_translation(image: np.ndarray, scale: float, shift: tuple[float, float]) -> None:
    flow = DISFlow(DISFlowConfig(preset="fast", scale=scale))(image, translate(image, *shift))
    # Full resolution whatever the scale, in full-resolution pixels.
    assert flow.shape == image.shape[:2] + (2,)
    assert flow.dtype == np.float32
    assert interior_epe(flow, shift) < 0.5


def test_flow_points_from_a_to_where_the_pixel_went_in_b(image: np.ndarray) -> None:
    # b shows a's content moved right by 4 and up by 2.
    b = translate(image, 4.0, -2.0)
    dis = DISFlow(DISFlowConfig(scale=1.0))
    forward = dis(image, b)
    inner = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    assert np.median(forward[inner][..., 0]) > 3.5  # rightwards
    assert np.median(forward[inner][..., 1]) < -1.5  # upwards (y grows downwards)
    # Swapping the images reverses the flow.
    assert interior_epe(dis(b, image), (-4.0, 2.0)) < 0.5
    # Definition check: sampling b at x + flow(x) gives back a.
    h, w = image.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    back = cv2.remap(b, gx + forward[..., 0], gy + forward[..., 1], cv2.INTER_LINEAR)
    diff = np.abs(back[inner].astype(np.int16) - image[inner].astype(np.int16))
    unwarped = np.abs(b[inner].astype(np.int16) - image[inner].astype(np.int16))
    assert diff.mean() < 0.25 * unwarped.mean()


def test_local_motion_shows_only_where_the_patch_moved(image: np.ndarray) -> None:
    b = image.copy()
    patch = textured(60, 60, seed=9)
    a = image.copy()
    a[90:150, 100:160] = patch
    b[90:150, 106:166] = patch  # patch moved 6 px right, background still
    flow = DISFlow(DISFlowConfig(scale=1.0))(a, b)
    inside = flow[100:140, 115:150]
    outside = flow[MARGIN:70, MARGIN:-MARGIN]
    assert np.median(inside[..., 0]) == pytest.approx(6.0, abs=1.0)
    assert np.abs(np.median(inside[..., 1])) < 1.0
    assert np.abs(outside).max(axis=(0, 1)).max() < 1.0


@pytest.mark.parametrize("preset", ["ultrafast", "fast", "balanced", "medium"])
def test_known_presets_are_accepted(preset: str) -> None:
    assert DISFlow(DISFlowConfig(preset=preset)).config.preset == preset


def test_balanced_is_medium_with_sparser_patches_and_fewer_refinement_passes_on_large_images(image: np.ndarray) -> None:
    medium, balanced = make_dis("medium", SPARSE_MIN_PIXELS), make_dis("balanced", SPARSE_MIN_PIXELS)
    assert (medium.getPatchStride(), medium.getVariationalRefinementIterations()) == (3, 5)
    assert (balanced.getPatchStride(), balanced.getVariationalRefinementIterations()) == (4, 2)
    assert (balanced.getFinestScale(), balanced.getGradientDescentIterations()) == (
        medium.getFinestScale(), medium.getGradientDescentIterations())
    small = make_dis("balanced", SPARSE_MIN_PIXELS - 1)  # small images: medium itself
    assert (small.getPatchStride(), small.getVariationalRefinementIterations()) == (3, 5)


def test_balanced_flow_is_medium_below_the_size_and_still_accurate_above(image: np.ndarray) -> None:
    shifted = translate(image, 2.3, -1.7)  # 320x240: under SPARSE_MIN_PIXELS
    balanced, medium = DISFlow(DISFlowConfig(preset="balanced", scale=1.0)), DISFlow(DISFlowConfig(preset="medium", scale=1.0))
    assert np.array_equal(balanced(image, shifted), medium(image, shifted))
    big = cv2.resize(image, (480, 360), interpolation=cv2.INTER_LINEAR)
    big_shifted = translate(big, 2.3, -1.7)
    flow = balanced(big, big_shifted)
    assert not np.array_equal(flow, medium(big, big_shifted))
    assert interior_epe(flow, (2.3, -1.7)) < 0.3


def test_thin_images_give_flow_instead_of_crashing_the_process() -> None:
    """OpenCV's DIS segfaults on some images with a side under 32 px (31x640, 15x400): run in a child process so
    a crash is a failure here, not the end of the test run."""
    code = (
        "import numpy as np\n"
        "from movseg_ros.flow import DISFlow, DISFlowConfig\n"
        "for h, w in ((31, 640), (15, 400), (12, 64), (24, 1920), (2, 3), (400, 12)):\n"
        "    for preset in ('balanced', 'medium', 'fast', 'ultrafast'):\n"
        "        a = np.random.default_rng(0).integers(0, 255, (h, w), dtype=np.uint8)\n"
        "        f = DISFlow(DISFlowConfig(preset=preset, scale=1.0)).flow_grey(a, np.roll(a, 1, 1))\n"
        "        assert f.shape == (h, w, 2) and f.dtype == np.float32 and f.flags['C_CONTIGUOUS'], (h, w, f.shape)\n"
        "print('done')\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "done", run.stderr[-2000:]


def test_padding_a_thin_image_keeps_its_motion(image: np.ndarray) -> None:
    strip = image[100:124]  # 320x24: padded to 32 rows for DIS
    flow = DISFlow(DISFlowConfig(preset="medium", scale=1.0))(strip, translate(strip, 2.0, 0.0))
    assert flow.shape == (24, 320, 2)
    assert np.median(flow[4:-4, MARGIN:-MARGIN, 0]) == pytest.approx(2.0, abs=0.3)


def test_unknown_preset_is_rejected() -> None:
    with pytest.raises(ValueError, match="preset 'slow'"):
        DISFlowConfig(preset="slow")


@pytest.mark.parametrize("scale", [0.0, 0.05, 1.5, -0.5])
def test_scale_outside_range_is_rejected(scale: float) -> None:
    with pytest.raises(ValueError, match="scale"):
        DISFlowConfig(scale=scale)


def test_grey_is_downscaled_by_scale(image: np.ndarray) -> None:
    g = DISFlow(DISFlowConfig(scale=0.5)).grey(image)
    assert g.shape == (120, 160) and g.dtype == np.uint8


# --- flow_to_image -----------------------------------------------------------------------------


def constant_flow(fx: float, fy: float, shape: tuple[int, int] = (8, 10)) -> np.ndarray:
    flow = np.zeros(shape + (2,), np.float32)
    flow[..., 0], flow[..., 1] = fx, fy
    return flow


def test_encoding_is_uint8_with_an_empty_third_channel() -> None:
    rng = np.random.default_rng(0)
    flow = rng.normal(0, 3, (12, 16, 2)).astype(np.float32)
    img = flow_to_image(flow)
    assert img.shape == (12, 16, 3) and img.dtype == np.uint8
    assert not img[..., 2].any()
    assert img[..., 1].any() and img[..., 0].any()


def test_angle_channel_encodes_direction() -> None:
    right = flow_to_image(constant_flow(3.0, 0.0))[..., 0]
    down = flow_to_image(constant_flow(0.0, 3.0))[..., 0]
    left = flow_to_image(constant_flow(-3.0, 0.0))[..., 0]
    up = flow_to_image(constant_flow(0.0, -3.0))[..., 0]
    quarter = 255 / 4  # a quarter turn
    assert int(right.max()) <= 1 or int(right.min()) >= 254  # angle 0 (wraps to 2 pi)
    assert np.all(np.abs(down.astype(int) - quarter) <= 1)
    assert np.all(np.abs(left.astype(int) - 2 * quarter) <= 1)
    assert np.all(np.abs(up.astype(int) - 3 * quarter) <= 1)


def test_angle_does_not_depend_on_speed() -> None:
    slow = flow_to_image(constant_flow(1.0, 1.0))[..., 0]
    fast = flow_to_image(constant_flow(8.0, 8.0))[..., 0]
    assert np.array_equal(slow, fast)


def test_magnitude_channel_scales_with_speed() -> None:
    flow = np.zeros((4, 6, 2), np.float32)
    flow[:, :2, 0] = 1.0
    flow[:, 2:4, 0] = 2.0
    flow[:, 4:, 1] = 4.0  # the frame's largest: full scale
    mag = flow_to_image(flow)[..., 1].astype(float)
    assert np.all(mag[:, 4:] == 255)
    assert mag[0, 2] == pytest.approx(255 / 2, abs=1)
    assert mag[0, 0] == pytest.approx(255 / 4, abs=1)


def test_max_magnitude_fixes_the_scale_and_clips() -> None:
    flow = np.zeros((2, 3, 2), np.float32)
    flow[:, 0, 0] = 1.0
    flow[:, 1, 0] = 2.0
    flow[:, 2, 0] = 10.0  # faster than max_magnitude
    mag = flow_to_image(flow, max_magnitude=4.0)[..., 1].astype(float)
    assert mag[0, 0] == pytest.approx(255 / 4, abs=1)
    assert mag[0, 1] == pytest.approx(255 / 2, abs=1)
    assert mag[0, 2] == 255
    # Same flow, same scale: two frames encoded with one max_magnitude compare directly.
    half = flow_to_image(flow / 2, max_magnitude=4.0)[..., 1].astype(float)
    assert half[0, 1] == pytest.approx(mag[0, 0], abs=1)


def test_zero_flow_has_zero_magnitude() -> None:
    img = flow_to_image(np.zeros((5, 5, 2), np.float32))
    assert not img[..., 1].any()
