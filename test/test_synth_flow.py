"""The synthetic clips' flow is exact: warping frame t+1 by it gives back frame t; it follows the camera
(parallax included) on everything that does not move in the world."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from movseg_ros.synth import SynthConfig, generate_clip, preset
from movseg_ros.synth.clip import Clip

W, H = 192, 144
WARP_TOLERANCE = 3.0  # mean |frame t - warped frame t+1|, grey levels, noise/blur/brightness off, away from edges
SMOOTH_TOLERANCE = 1.5  # the same after a Gaussian blur (sigma 1 px) of both


def clean(**changes) -> SynthConfig:
    """Camera that pans, tilts, rolls, zooms and translates (parallax over 3 layers), 3 movers, no noise/blur."""
    base = preset("motion").replace(
        width=W, height=H, frames=4, n_moving=(3, 3), n_static=(1, 2), camera_still_probability=0.0,
        pan_deg=0.6, tilt_deg=0.4, roll_deg=0.8, zoom=0.015, camera_translation=3.0, depth_layers=3,
        noise_sigma=(0.0, 0.0), blur_probability=0.0, brightness_drift=0.0)
    return base.replace(**changes)


def edges(ids: np.ndarray, flow: np.ndarray | None) -> np.ndarray:
    """Pixels beside an id change or a flow discontinuity (> 0.05 px between neighbours)."""
    out = np.zeros(ids.shape, bool)
    dx, dy = ids[:, 1:] != ids[:, :-1], ids[1:] != ids[:-1]
    if flow is not None:
        dx = dx | (np.abs(np.diff(flow, axis=1)).max(-1) > 0.05)
        dy = dy | (np.abs(np.diff(flow, axis=0)).max(-1) > 0.05)
    out[:, 1:] |= dx
    out[:, :-1] |= dx
    out[1:] |= dy
    out[:-1] |= dy
    return out


def grow(mask: np.ndarray, r: int) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0


def warp_back(clip: Clip, t: int, flow: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frame t+1 sampled at x + flow(x), and the pixels where that must equal frame t (not occluded,
    not at an edge, target inside the frame), found from the id maps and the flow's discontinuities:
    - anywhere: farther than the largest displacement from every edge (nothing can cover it in one frame);
    - on objects: 2 px from edges at t, landing on the same id at t+1, 2 px from that frame's id edges."""
    f = clip.flow[t] if flow is None else flow
    mx, my = _targets(f)
    warped = cv2.remap(clip.images[t + 1], mx, my, cv2.INTER_LINEAR)
    ids = clip.instances[t]
    at_edge = edges(ids, clip.flow[t])
    r = int(np.ceil(2 * np.abs(clip.flow[t]).max())) + 2
    inside = (mx >= 1) & (mx <= W - 2) & (my >= 1) & (my <= H - 2)
    col, row = np.clip(np.round(mx), 0, W - 1).astype(int), np.clip(np.round(my), 0, H - 1).astype(int)
    lands_clean = (clip.instances[t + 1][row, col] == ids) & ~grow(edges(clip.instances[t + 1], None), 2)[row, col]
    on_object = (ids > 0) & ~grow(at_edge, 2) & lands_clean
    return warped, inside & (~grow(at_edge, r) | on_object)


def camera_flow(clip: Clip, t: int, depth: float) -> np.ndarray:
    """Flow of a world point at `depth` that stays still: the camera's motion alone."""
    g = clip.camera_matrix(t + 1, depth) @ np.linalg.inv(clip.camera_matrix(t, depth))
    xs, ys = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    den = g[2, 0] * xs + g[2, 1] * ys + g[2, 2]
    return np.dstack([(g[0, 0] * xs + g[0, 1] * ys + g[0, 2]) / den - xs,
                      (g[1, 0] * xs + g[1, 1] * ys + g[1, 2]) / den - ys]).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_warping_next_frame_by_the_flow_gives_back_the_frame(seed: int) -> None:
    clip = generate_clip(clean(), seed)
    assert not clip.camera.still
    for t in range(clip.flow.shape[0]):
        warped, valid = warp_back(clip, t)
        assert valid.mean() > 0.15, f"too few comparable pixels at t={t}"
        err = np.abs(warped.astype(np.float32) - clip.images[t].astype(np.float32)).mean(axis=-1)
        assert err[valid].mean() < WARP_TOLERANCE, f"seed {seed} t={t}: mean error {err[valid].mean():.2f}"
        # most of that is bilinear resampling of fine texture (done twice); smoothed, it nearly vanishes
        smooth = np.abs(cv2.GaussianBlur(warped, (0, 0), 1.0).astype(np.float32)
                        - cv2.GaussianBlur(clip.images[t], (0, 0), 1.0).astype(np.float32)).mean(axis=-1)
        assert smooth[valid].mean() < SMOOTH_TOLERANCE, f"seed {seed} t={t}: smoothed error {smooth[valid].mean():.2f}"
        # the check can fail: the flow moved by half a pixel is clearly worse
        off = clip.flow[t] + np.float32(0.5)
        worse = np.abs(cv2.remap(clip.images[t + 1], *_targets(off), cv2.INTER_LINEAR).astype(np.float32)
                       - clip.images[t].astype(np.float32)).mean(axis=-1)
        assert worse[valid].mean() > 1.3 * err[valid].mean()


def _targets(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
    return xs + flow[..., 0], ys + flow[..., 1]


def test_ids_carried_along_the_flow_land_on_the_same_object() -> None:
    """Object pixels away from edges, moved by the flow, land on their own id in the next frame, or on a
    nearer object that now covers them (background layers are all behind the objects here)."""
    clip = generate_clip(clean(layer_depth=(6.0, 8.0), object_depth=(1.2, 4.0)), 3)
    for t in range(clip.flow.shape[0]):
        mx, my = _targets(clip.flow[t])
        ids = clip.instances[t]
        col, row = np.clip(np.round(mx), 0, W - 1).astype(int), np.clip(np.round(my), 0, H - 1).astype(int)
        land = clip.instances[t + 1][row, col]
        inside = (mx >= 0) & (mx <= W - 1) & (my >= 0) & (my <= H - 1)
        objects = (ids > 0) & ~grow(edges(ids, clip.flow[t]), 2) & inside
        assert objects.sum() > 200
        nearer = (land > 0) & (clip.depth[land] < clip.depth[ids])
        ok = (land == ids) | nearer
        assert ok[objects].mean() > 0.98, f"t={t}: {ok[objects].mean():.3f}"
        assert (land == ids)[objects].mean() > 0.8


def test_static_objects_and_far_background_move_exactly_as_the_camera_predicts() -> None:
    """Still things' flow is the camera's alone at their depth; moving objects' is not."""
    clip = generate_clip(clean(n_static=(2, 2)), 4)
    checked = 0
    for t in range(clip.flow.shape[0]):
        for oid in clip.ids:
            mask = clip.instances[t] == oid
            if mask.sum() < 20:
                continue
            residual = np.linalg.norm(clip.flow[t][mask] - camera_flow(clip, t, float(clip.depth[oid]))[mask], axis=-1)
            if oid in clip.static_ids:
                assert residual.max() < 0.02, f"static {oid} t={t}: {residual.max():.3f} px off the camera's motion"
                checked += 1
            elif clip.moving[t, oid]:
                assert residual.mean() > 0.5
    assert checked >= 2


def test_parallax_nearer_layers_move_more_under_camera_translation() -> None:
    """Camera translating only: the background's flow is a few pure shifts c/d, the far layer's smallest."""
    config = clean(pan_deg=0.0, tilt_deg=0.0, roll_deg=0.0, zoom=0.0, camera_translation=4.0, n_moving=(0, 0),
                   n_static=(0, 0), layer_depth=(2.0, 3.0))
    clip = generate_clip(config, 5)
    step = clip.camera.translations[1] - clip.camera.translations[0]
    assert np.linalg.norm(step) > 0.2
    far = -step / config.far_depth
    vectors = np.unique(np.round(clip.flow[0].reshape(-1, 2), 3), axis=0)
    assert 2 <= len(vectors) <= 3  # the far layer and the partial layers in view
    assert np.isclose(vectors, np.round(far, 3), atol=2e-3).all(axis=1).any()
    assert np.linalg.norm(vectors, axis=1).max() > 2.5 * np.linalg.norm(far)
