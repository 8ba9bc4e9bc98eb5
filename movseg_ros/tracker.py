"""The overlap tracker of seed 000 (section 3.4), shared by every pipeline.

Detections under alpha_low are dropped; surviving ones are matched to tracks by Hungarian
assignment on mask IoU against each track's latest mask; only moving detections over
alpha_high start tracks; a track unmatched for more than t_inactive frames ends. A track whose object
stops moving continues from static evidence: a static detection, or (when the segmenter gives
the camera's ego-motion) its last mask carried by the ego-motion and confirmed by appearance.
Static evidence never starts a track.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from movseg_ros.output import FrameOutput, TrackState, TrackStatus, label_map_of
from movseg_ros.segmenters.base import Detection, MotionContext, SegmenterResult

MAX_TRACK_ID = 65535  # ids are published as uint16 pixels


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker thresholds; defaults are seed 000's (alpha_low 0.7, alpha_high 0.9, t_inactive 10)."""

    alpha_low: float = 0.7
    alpha_high: float = 0.9
    t_inactive: int = 10
    min_iou: float = 0.2  # the seed does not state one; below this a pair is no match
    static_continuation: bool = True
    static_min_hits: int = 3  # moving sightings before a track may continue as static
    static_max_diff: float = 12.0  # median grey-level difference that still confirms appearance
    static_min_area: int = 16  # a carried mask smaller than this (pixels) is not continued
    partial_ratio: float = 0.6  # a match smaller than this fraction of its track may be completed by the carry
    static_max_appearance: float = 0.5  # colour-histogram (Hellinger) distance to the track's look that still confirms it

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha_low <= self.alpha_high <= 1.0:
            raise ValueError(f"need 0 <= alpha_low ({self.alpha_low}) <= alpha_high ({self.alpha_high}) <= 1")
        if self.t_inactive < 0:
            raise ValueError(f"t_inactive must be >= 0, got {self.t_inactive}")
        if not 0.0 < self.min_iou <= 1.0:
            raise ValueError(f"min_iou must be in (0, 1], got {self.min_iou}")


@dataclass
class _Track:
    id: int
    mask: np.ndarray
    score: float
    moving: bool
    start_index: int
    hits: int = 1
    moving_hits: int = 1
    misses: int = 0
    centre: tuple[float, float] = (0.0, 0.0)
    stamp_ns: int = 0
    velocity: tuple[float, float] = (0.0, 0.0)
    seen_now: bool = True
    last_box: tuple[int, int, int, int] = (0, 0, 0, 0)
    appearance: np.ndarray | None = None  # colour histogram learned while the object moved


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box (x0, y0, x1, y1), end-exclusive; zeros for an empty mask."""
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return (0, 0, 0, 0)
    xs = np.flatnonzero(mask.any(axis=0))
    return (int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1)


def mask_iou_matrix(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """Pairwise IoU of two lists of same-size boolean masks (each 2-D, or a stack of them)."""
    out = np.zeros((len(a), len(b)), np.float64)
    if not a or not b:
        return out
    a, b = [m.reshape(-1, m.shape[-1]) for m in a], [m.reshape(-1, m.shape[-1]) for m in b]  # (T, H, W) clips as rows
    box_a, box_b = [mask_box(m) for m in a], [mask_box(m) for m in b]
    inter = np.zeros((len(a), len(b)), np.float32)
    for i, (ma, (ax0, ay0, ax1, ay1)) in enumerate(zip(a, box_a)):
        for j, (mb, (bx0, by0, bx1, by1)) in enumerate(zip(b, box_b)):
            x0, y0, x1, y1 = max(ax0, bx0), max(ay0, by0), min(ax1, bx1), min(ay1, by1)
            if x1 > x0 and y1 > y0:  # only where the two boxes overlap can the masks
                inter[i, j] = np.count_nonzero(ma[y0:y1, x0:x1] & mb[y0:y1, x0:x1])
    area_a = np.array([np.count_nonzero(m) for m in a], np.float32)
    area_b = np.array([np.count_nonzero(m) for m in b], np.float32)
    union = area_a[:, None] + area_b[None, :] - inter
    np.divide(inter, union, out=out, where=union > 0)
    return out


def hungarian_match(iou: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """Maximum-IoU one-to-one assignment, keeping pairs at or over `min_iou`."""
    if iou.size == 0:
        return []
    rows, cols = linear_sum_assignment(-iou)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if iou[r, c] >= min_iou]


def carry_mask(mask: np.ndarray, motion: MotionContext, max_diff: float) -> np.ndarray | None:
    """The mask moved by the camera's ego-motion, if the image under it still looks the same.

    Appearance check: the previous frame warped by the ego-motion must match the current frame
    inside the carried mask (median absolute grey difference <= max_diff). A static object
    passes; an object that moved away, or was occluded, leaves a different image and fails.
    """
    h, w = mask.shape
    moved = cv2.warpPerspective(mask.astype(np.uint8), motion.homography, (w, h), flags=cv2.INTER_NEAREST) > 0
    if not moved.any():
        return None
    cur, warped = motion.current_grey, motion.previous_grey_moved
    diff = np.abs(cur[moved].astype(np.int16) - warped[moved].astype(np.int16))
    return moved if float(np.median(diff)) <= max_diff else None


def colour_histogram(image: np.ndarray, mask: np.ndarray, stride: int = 4) -> np.ndarray | None:
    """Normalised 8x8x8 RGB histogram of the masked pixels (every `stride`-th row and column)."""
    px = image[::stride, ::stride][mask[::stride, ::stride]]
    if len(px) < 8:
        return None
    q = (px[:, 0] >> 5).astype(np.int32) * 64 + (px[:, 1] >> 5).astype(np.int32) * 8 + (px[:, 2] >> 5)
    hist = np.bincount(q, minlength=512).astype(np.float64)
    return hist / hist.sum()


def hellinger(a: np.ndarray, b: np.ndarray) -> float:
    """Distance between two normalised histograms: 0 the same, 1 disjoint."""
    return float(np.sqrt(max(0.0, 1.0 - np.sqrt(a * b).sum())))


class Tracker:
    """Online tracker: `update` takes one frame's segmenter result and returns its tracks."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._index = 0

    def reset(self) -> None:
        """Forget every track (a new stream); ids keep counting up."""
        self._tracks.clear()

    def _new_id(self) -> int:
        used = {t.id for t in self._tracks}
        while True:
            tid = self._next_id
            self._next_id = 1 if self._next_id >= MAX_TRACK_ID else self._next_id + 1
            if tid not in used:
                return tid

    def update(self, result: SegmenterResult) -> FrameOutput:
        cfg = self.config
        frame = result.frame
        dets = [d for d in result.detections if d.score >= cfg.alpha_low]
        live = self._tracks
        matches = hungarian_match(mask_iou_matrix([t.mask for t in live], [d.mask for d in dets]), cfg.min_iou)
        matched_t = {ti for ti, _ in matches}
        matched_d = {di for _, di in matches}
        for t in live:
            t.seen_now = False
        for ti, di in matches:
            d = self._complete(live[ti], dets[di], result.motion)
            self._see(live[ti], d, frame.stamp_ns)
            if d.moving:
                self._learn_look(live[ti], frame.image, d.mask)
        for ti, t in enumerate(live):
            if ti in matched_t:
                continue
            carried = self._carry(t, result.motion)
            if carried is not None and carried.sum() >= cfg.static_min_area:
                self._see(t, Detection(carried, t.score, moving=False), frame.stamp_ns)
            else:
                t.misses += 1
        self._tracks = [t for t in live if t.misses <= cfg.t_inactive]
        for di, d in enumerate(dets):
            if di not in matched_d and d.moving and d.score > cfg.alpha_high:
                box = mask_box(d.mask)
                self._tracks.append(
                    _Track(self._new_id(), d.mask, d.score, True, self._index,
                           centre=((box[0] + box[2]) / 2, (box[1] + box[3]) / 2),
                           stamp_ns=frame.stamp_ns, last_box=box,
                           appearance=colour_histogram(frame.image, d.mask))
                )
        states = [self._state(t) for t in self._tracks]
        self._index += 1
        return FrameOutput(frame, states, label_map_of([s for s in states if s.status == TrackStatus.VISIBLE], frame.size))

    def _complete(self, t: _Track, d: Detection, motion: MotionContext | None) -> Detection:
        """A detection covering only part of its track, where the rest of the track's object is
        still there (static, by the ego-motion carry), takes that rest back: an object slowing
        down shows motion only in parts, and must not shrink to them."""
        if d.mask.sum() >= self.config.partial_ratio * t.mask.sum():
            return d
        carried = self._carry(t, motion)
        return d if carried is None else Detection(carried | d.mask, d.score, d.moving)

    def _carry(self, t: _Track, motion: MotionContext | None) -> np.ndarray | None:
        """The track's mask carried by the camera's ego-motion, if the object is still there.

        Confirmed twice by appearance: the image under the mask did not change with the camera
        (carry_mask), and it still has the colours the object had while it moved (so a track
        that slid onto static background does not live on as a ghost).
        """
        cfg = self.config
        if not (cfg.static_continuation and motion is not None and t.moving_hits >= cfg.static_min_hits):
            return None
        carried = carry_mask(t.mask, motion, cfg.static_max_diff)
        if carried is None or t.appearance is None:
            return carried
        look = colour_histogram(motion.current, carried)
        if look is None or hellinger(look, t.appearance) > cfg.static_max_appearance:
            return None
        return carried

    @staticmethod
    def _learn_look(t: _Track, image: np.ndarray, mask: np.ndarray) -> None:
        """Update the track's colour histogram from a moving sighting (slowly, to ride out noise)."""
        look = colour_histogram(image, mask)
        if look is not None:
            t.appearance = look if t.appearance is None else 0.8 * t.appearance + 0.2 * look

    def _see(self, t: _Track, d: Detection, stamp_ns: int) -> None:
        box = mask_box(d.mask)
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        dt = (stamp_ns - t.stamp_ns) * 1e-9
        if dt > 0:
            v = ((centre[0] - t.centre[0]) / dt, (centre[1] - t.centre[1]) / dt)
            t.velocity = (0.5 * t.velocity[0] + 0.5 * v[0], 0.5 * t.velocity[1] + 0.5 * v[1])
        t.centre, t.stamp_ns, t.last_box = centre, stamp_ns, box
        t.mask, t.moving, t.misses, t.seen_now = d.mask, d.moving, 0, True
        t.score = d.score
        t.hits += 1
        t.moving_hits += int(d.moving)

    def _state(self, t: _Track) -> TrackState:
        return TrackState(
            id=t.id, mask=t.mask if t.seen_now else None, box=t.last_box, score=float(t.score),
            moving=bool(t.moving and t.seen_now), status=TrackStatus.VISIBLE if t.seen_now else TrackStatus.LOST,
            age=self._index - t.start_index, hits=t.hits, velocity=t.velocity,
        )


def _reversed_results(results: list[SegmenterResult]) -> list[SegmenterResult]:
    """The same results in reverse time: each motion context now runs from frame t+1 to t."""
    out = []
    n = len(results)
    for i in range(n - 1, -1, -1):
        nxt = results[i + 1].motion if i + 1 < n else None
        motion = None
        if nxt is not None:
            motion = MotionContext(nxt.current, nxt.previous, np.linalg.inv(nxt.homography))
        out.append(SegmenterResult(results[i].frame, results[i].detections, motion))
    return out


def track_offline(results: list[SegmenterResult], config: TrackerConfig = TrackerConfig(),
                  backward_results: list[SegmenterResult] | None = None) -> list[FrameOutput]:
    """Forward then backward tracking over a whole sequence (seed 000 on FBMS).

    The backward pass picks objects up before they started moving (in reverse time they stop,
    and static continuation carries them). Backward tracks are matched to forward ones by mean
    mask IoU over the frames both see; matched ones take the forward id and fill the frames the
    forward pass missed; unmatched ones get new ids. `backward_results`, in frame order, are the
    sequence segmented in reverse time (so the first frame has motion too); without them the
    forward results are replayed backwards.
    """
    forward_tracker = Tracker(config)
    forward = [forward_tracker.update(r) for r in results]
    if backward_results is None:
        backward_results = _reversed_results(results)[::-1]
    if len(backward_results) != len(results):
        raise ValueError(f"{len(results)} forward results but {len(backward_results)} backward ones")
    back_tracker = Tracker(config)
    backward = [back_tracker.update(r) for r in reversed(backward_results)][::-1]
    fwd_ids = sorted({t.id for o in forward for t in o.visible})
    bwd_ids = sorted({t.id for o in backward for t in o.visible})
    overlap = np.zeros((len(fwd_ids), len(bwd_ids)))
    counts = np.zeros_like(overlap)
    fi = {tid: k for k, tid in enumerate(fwd_ids)}
    bi = {tid: k for k, tid in enumerate(bwd_ids)}
    for fo, bo in zip(forward, backward):
        fv, bv = fo.visible, bo.visible
        iou = mask_iou_matrix([t.mask for t in fv], [t.mask for t in bv])
        for a, ft in enumerate(fv):
            for b, bt in enumerate(bv):
                overlap[fi[ft.id], bi[bt.id]] += iou[a, b]
                counts[fi[ft.id], bi[bt.id]] += 1
    mean_iou = np.divide(overlap, counts, out=np.zeros_like(overlap), where=counts > 0)
    rename = {bwd_ids[b]: fwd_ids[a] for a, b in hungarian_match(mean_iou, config.min_iou)}
    next_id = max(fwd_ids, default=0) + 1
    for tid in bwd_ids:
        if tid not in rename:
            rename[tid] = next_id
            next_id += 1
    merged = []
    for fo, bo in zip(forward, backward):
        have = {t.id for t in fo.visible}
        tracks = list(fo.visible)
        for t in bo.visible:
            new_id = rename[t.id]
            if new_id not in have:
                tracks.append(TrackState(new_id, t.mask, t.box, t.score, t.moving, t.status, t.age, t.hits, t.velocity))
                have.add(new_id)
        merged.append(FrameOutput(fo.frame, tracks, label_map_of(tracks, fo.frame.size)))
    return merged
