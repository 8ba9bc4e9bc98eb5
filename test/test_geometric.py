"""The geometric segmenter (flow, ego-motion, residual motion) alone and through the Pipeline."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from core_helpers import frame, iou, rect, textured

from movseg_ros.clip_buffer import ClipBuffer
from movseg_ros.frame import Frame
from movseg_ros.output import FrameOutput
from movseg_ros.pipeline import Pipeline
from movseg_ros.scene import Scene, SceneConfig, make_scene
from movseg_ros.segmenters.geometric import GeometricConfig, GeometricSegmenter

W, H = 320, 240
WARM_UP = 2  # the first frame has no previous one; the next may still settle


@pytest.fixture(scope="module")
def world() -> np.ndarray:
    """Textured ground larger than the view, so the camera can pan over it."""
    return textured(H + 200, W + 200, seed=11)


def camera(t: int, pan: tuple[float, float] = (3.0, 1.0), zoom: float = 0.004) -> np.ndarray:
    """3x3 map from world to frame t: pans `pan` px/frame and zooms in by `zoom` a frame."""
    s = 1.0 + zoom * t
    ox, oy = 100 + pan[0] * t, 100 + pan[1] * t
    cx, cy = W / 2, H / 2
    return np.array([[s, 0, cx - s * (ox + cx)], [0, s, cy - s * (oy + cy)], [0, 0, 1]])


def view(world: np.ndarray, t: int, noise_seed: int = 0, **cam) -> np.ndarray:
    img = cv2.warpAffine(world, camera(t, **cam)[:2], (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    noise = np.random.default_rng([noise_seed, t]).normal(0.0, 2.0, img.shape)  # sensor noise
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def square_clip(world: np.ndarray, n: int = 14) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A textured 40 px square moving (5, 1) px/frame over a background panning (3, 1) px/frame."""
    square = textured(40, 40, seed=12)
    images, truths = [], []
    for t in range(n):
        img = view(world, t, zoom=0.0)
        x, y = 60 + 5 * t, 100 + t
        img[y : y + 40, x : x + 40] = square
        images.append(img)
        truths.append(rect((H, W), x, y, x + 40, y + 40))
    return images, truths


def segment(images: list[np.ndarray], config: GeometricConfig = GeometricConfig()):
    seg, buf = GeometricSegmenter(config), ClipBuffer(4)
    out = []
    for t, img in enumerate(images):
        buf.push(frame(img, t))
        (r,) = seg.process(buf)
        assert r.frame.index == t  # online: the newest frame's result at once
        out.append(r)
    return out


# --- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, word",
    [({"work_width": 32}, "work_width"), ({"work_width": 4000}, "work_width"),
     ({"flow_preset": "slow"}, "preset"), ({"memory": 1.0}, "memory"), ({"memory": -0.1}, "memory"),
     ({"fb_flow_refinement": -2}, "fb_flow_refinement"), ({"fb_flow_refinement": 21}, "fb_flow_refinement")],
)
def test_bad_config_is_rejected(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        GeometricConfig(**kwargs)


def test_segmenter_declares_itself_online_on_cpu() -> None:
    seg = GeometricSegmenter()
    assert (seg.name, seg.latency_frames, seg.device) == ("geometric", 0, "cpu")


def test_the_checks_backward_flow_has_its_own_refinement_setting(world: np.ndarray) -> None:
    """fb_flow_refinement sets the backward flow's DIS refinement passes (the forward flow keeps the preset's),
    and the check reads that flow: its failures change with the setting."""
    images, _ = square_clip(world, 4)
    failures = {}
    for passes in (0, -1):
        seg = GeometricSegmenter(GeometricConfig(fb_flow_refinement=passes, appearance="none", memory_net="none",
                                                 motion_net="none"))
        buf = ClipBuffer(4)
        for t, img in enumerate(images):
            buf.push(frame(img, t))
            seg.process(buf)
        pixels = W * H
        forward, backward = seg.flow._for_pixels(pixels), seg.back_flow._for_pixels(pixels)
        preset = forward.getVariationalRefinementIterations()
        assert backward.getVariationalRefinementIterations() == (preset if passes == -1 else passes)
        failures[passes] = seg.last_maps.fb_fail
    assert not np.array_equal(failures[0], failures[-1])


# --- camera motion only ------------------------------------------------------------------------


def test_first_frame_has_no_detections_and_no_motion(world: np.ndarray) -> None:
    (r,) = segment([view(world, 0)])
    assert r.detections == [] and r.motion is None


def test_camera_pan_and_zoom_alone_give_no_detections(world: np.ndarray) -> None:
    results = segment([view(world, t) for t in range(16)])
    for t, r in enumerate(results[WARM_UP:], WARM_UP):
        assert r.detections == [], f"frame {t}: {[d.mask.sum() for d in r.detections]} px flagged as moving"


def test_ego_motion_matches_the_camera(world: np.ndarray) -> None:
    results = segment([view(world, t) for t in range(6)])
    corners = np.array([[20, 300, 160, 20, 300], [20, 20, 120, 220, 220], [1, 1, 1, 1, 1]], float)
    for t, r in enumerate(results[1:], 1):
        assert r.motion is not None
        assert r.motion.previous is results[t - 1].frame.image and r.motion.current is r.frame.image
        truth = camera(t) @ np.linalg.inv(camera(t - 1))  # previous frame -> this frame
        got = r.motion.homography @ corners
        want = truth @ corners
        assert np.abs(got[:2] / got[2] - want[:2] / want[2]).max() < 0.5


# --- independent motion ------------------------------------------------------------------------


def test_square_moving_over_a_panning_background_is_detected(world: np.ndarray) -> None:
    images, truths = square_clip(world)
    results = segment(images)
    for t, r in enumerate(results[3:], 3):
        assert len(r.detections) == 1, f"frame {t}"
        (d,) = r.detections
        assert d.moving and d.score > 0.9
        assert d.mask.shape == (H, W) and d.mask.dtype == bool
        assert iou(d.mask, truths[t]) >= 0.5, f"frame {t}"


def test_masks_come_back_at_full_resolution_from_a_smaller_work_width(world: np.ndarray) -> None:
    images, truths = square_clip(world, n=8)
    results = segment(images, GeometricConfig(work_width=160))
    (d,) = results[-1].detections
    assert d.mask.shape == (H, W)
    assert iou(d.mask, truths[-1]) >= 0.5
    assert results[-1].motion.homography[0, 2] == pytest.approx(-3.0, abs=0.5)  # full-res pixels


def test_pipeline_tracks_the_square_under_one_id(world: np.ndarray) -> None:
    images, truths = square_clip(world)
    pipe = Pipeline()
    outs = [o for t, img in enumerate(images) for o in pipe.process(frame(img, t))]
    assert len(outs) == len(images)
    ids = set()
    for t, o in enumerate(outs[3:], 3):
        (track,) = o.visible
        assert track.moving
        assert iou(o.label_map == track.id, truths[t]) >= 0.5
        ids.add(track.id)
    assert len(ids) == 1


def test_pipeline_resets_on_a_resolution_change(world: np.ndarray) -> None:
    images, _ = square_clip(world, n=6)
    pipe = Pipeline()
    for t, img in enumerate(images):
        pipe.process(frame(img, t))
        assert pipe.last_reset is None
    cropped = [np.ascontiguousarray(img[:180, :240]) for img in images]  # the same scene at 240x180
    (o,) = pipe.process(frame(cropped[0], 6))
    assert pipe.last_reset is not None and pipe.last_reset.reason == "resolution"
    assert o.tracks == [] and o.label_map.shape == (180, 240)  # nothing carried across
    for t in range(1, 6):
        (o,) = pipe.process(frame(cropped[t], 6 + t))
    assert len(o.visible) == 1  # detects again at the new size
    assert len(pipe.buffer) == 6  # only the frames since the reset


# --- the synthetic scene through the Pipeline ---------------------------------------------------

SCENE = SceneConfig(width=320, height=240, frames=36, stop_frame=18, seed=0)


@pytest.fixture(scope="module")
def scene_run() -> tuple[Scene, list[FrameOutput]]:
    scene = make_scene(SCENE)
    pipe = Pipeline()
    period = int(1e9 / scene.fps)
    outs = [o for t, img in enumerate(scene.frames) for o in pipe.process(Frame(img, t * period, "cam", t))]
    assert len(outs) == SCENE.frames
    return scene, outs


def test_scene_mover_is_segmented_in_most_frames(scene_run) -> None:
    scene, outs = scene_run
    mover = scene.roles["mover"]
    good = []
    for t in range(5, SCENE.frames):
        truth = scene.ids[t] == mover
        best = max((iou(tr.mask, truth) for tr in outs[t].visible if tr.moving), default=0.0)
        good.append(best >= 0.5)
    assert np.mean(good) >= 0.8


def test_scene_static_object_is_never_in_a_moving_track(scene_run) -> None:
    scene, outs = scene_run
    static = scene.roles["static"]
    for t, o in enumerate(outs):
        truth = scene.ids[t] == static
        for tr in o.visible:
            if tr.moving:
                covered = (tr.mask & truth).sum() / truth.sum()
                assert covered < 0.1, f"frame {t}: moving track {tr.id} covers {covered:.0%} of the static object"


def test_scene_stopper_keeps_its_id_and_turns_static(scene_run) -> None:
    scene, outs = scene_run
    stopper = scene.roles["stopper"]
    ids = []
    for t in range(WARM_UP, SCENE.frames):
        truth = scene.ids[t] == stopper
        best = max(outs[t].visible, key=lambda tr: iou(tr.mask, truth), default=None)
        assert best is not None and iou(best.mask, truth) >= 0.5, f"frame {t}: stopper not segmented"
        ids.append(best.id)
        if t < SCENE.stop_frame:
            assert best.moving, f"frame {t}: stopper still moves"
        elif t >= SCENE.stop_frame + 3:
            assert not best.moving, f"frame {t}: stopper stopped at {SCENE.stop_frame}"
    assert len(set(ids)) == 1


def test_colour_model_is_the_sum_of_log_odds_raising_only_near_motion() -> None:
    """The colour term as odds (one table lookup a pixel) equals sigmoid(logit(p) + w logit(fg / (fg + bg)))."""
    rng = np.random.default_rng(3)
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[...] = (40, 90, 40)  # green background
    rgb[20:40, 20:40] = (200, 30, 30)  # a red mover
    rgb[5:10, 65:75] = (200, 30, 30)  # a red patch far from any motion
    rgb = (rgb + rng.integers(0, 8, rgb.shape)).astype(np.uint8)
    prob = np.full((60, 80), 0.1, np.float32)
    prob[20:40, 20:36] = 0.7  # motion found most of the mover
    prob[5:10, 65:75] = 0.45
    seg = GeometricSegmenter(GeometricConfig(appearance="none", colour_weight=1.5, colour_reach=6))
    fused = seg._colour_fuse(rgb, prob)

    q = ((rgb[..., 0] >> 4).astype(int) << 8) | ((rgb[..., 1] >> 4).astype(int) << 4) | (rgb[..., 2] >> 4)
    fg = np.bincount(q[prob > 0.6], minlength=4096) / np.count_nonzero(prob > 0.6)
    bg = np.bincount(q[prob < 0.2], minlength=4096) / np.count_nonzero(prob < 0.2)
    logit = lambda p, eps: np.log((p + eps) / (1 - p + eps))  # noqa: E731
    want = 1 / (1 + np.exp(-(logit(prob.astype(np.float64), 1e-3) + 1.5 * logit((fg + 1e-4) / (fg + bg + 2e-4), 1e-3)[q])))
    near = cv2.dilate((prob > 0.5).astype(np.uint8), np.ones((13, 13), np.uint8)) > 0
    want = np.where(near, want, np.minimum(prob, want))
    assert fused.dtype == np.float32
    assert np.allclose(fused, want, atol=1e-5)
    assert fused[30, 38] > 0.9  # the mover's unmoving edge is completed by its colour
    assert fused[7, 70] <= 0.45  # the same colour far from motion is never raised
    assert fused[50, 10] < 0.01  # background colour is lowered
