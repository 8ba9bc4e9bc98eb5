"""Near-online clip stitching for STEm-Seg (seed 004, "Clip stitching"): per-clip tubes become stream-wide tracks.

Schedule. Clips hold T = `length` frames and consecutive clips share T_c = `overlap` frames, so the
stride is s = T - T_c. Clip k covers frames [k*s, k*s + T) and is complete once k*s + T frames have
been received ("frames_seen" counts frames received, so the newest frame's index is frames_seen - 1).

Publication rule (exact):
1. Source: a frame is published from the EARLIEST clip that contains it. The last T_c frames of
   clip k are published from clip k; clip k+1's masks for them serve only to link the two clips.
2. Finality: clip k's ids are fixed when clip k is linked to clip k-1, so every frame of clip k is
   final as soon as clip k is complete. Clip 0 makes frames [0, T) final; clip k >= 1 makes its last
   s frames [(k-1)*s + T, k*s + T) final. Each frame becomes final exactly once.
3. Timing: frame i is published when frames_seen == max(i + s + 1, T), i.e. when frame i + s arrives:
   in steady state every frame comes out exactly s = T - T_c frames after it (at frames_seen n the
   stitcher publishes frame n - 1 - s, one frame per frame received). At start-up frames 0..T_c-1 all
   come out at n = T, when clip 0 completes. The frame is always final by then: frame i >= T lies in
   the s frames clip k makes final, so (k-1)*s + T <= i, and clip k completes at n = k*s + T <= i + s.
4. End of stream: after n frames, `ClipSchedule.tail_clip(n)` names the short last clip (start on the
   stride grid, fewer than T frames) covering the frames no complete clip covers; add it with
   `final=True`, then `flush()` publishes every final frame still held, in order.

Linking. The new clip's tracklets (its local ids; they mean nothing across clips) are matched to the
previous clip's global tracks by Hungarian assignment (`tracker.hungarian_match`, pairs under `min_iou`
dropped) on the tube IoU over the shared frames: intersection and union summed over those frames. A
tracklet with no pixels there cannot match; an unmatched tracklet gets a fresh global id. With
overlap 0 nothing is shared, so the previous clip's last frame is matched against the new clip's first
frame instead (adjacent frames, as an online tracker would). Global ids count up from 1 and are never
reused, also across `reset()`; after MAX_TRACK_ID (uint16) they wrap, skipping ids still alive.

Gaps. Frames missing from a stream (dropped on the way) must not be joined in one clip: the stream's
clips end there like at the end of a stream (tail clip, `flush()`), and `restart()` starts a new clip
sequence at frame 0 whose first clip is linked to the last frame before the gap, as with overlap 0, so
the same objects keep their ids. `reset()` is a new stream: nothing is linked to what came before.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from movseg_ros.tracker import MAX_TRACK_ID, hungarian_match, mask_iou_matrix

MAX_CLIP_LENGTH = 64
MAX_LOCAL_ID = 65535  # local tube ids index a lookup table


@dataclass(frozen=True)
class ClipSchedule:
    """Which frames of a stream form each clip, and when each frame is published."""

    length: int  # T, frames per clip
    overlap: int  # T_c, frames shared by consecutive clips

    def __post_init__(self) -> None:
        for name in ("length", "overlap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"ClipSchedule.{name} must be an int, got {value!r}")
        if not 2 <= self.length <= MAX_CLIP_LENGTH:
            raise ValueError(f"ClipSchedule.length must be in [2, {MAX_CLIP_LENGTH}], got {self.length}")
        if not 0 <= self.overlap < self.length:
            raise ValueError(f"ClipSchedule.overlap must be in [0, length={self.length}), got {self.overlap}")

    @property
    def stride(self) -> int:
        """s = T - T_c: frames between the starts of consecutive clips."""
        return self.length - self.overlap

    @property
    def latency_frames(self) -> int:
        """Steady-state output latency, T - T_c frames (rule 3 of the module docstring)."""
        return self.stride

    def clip_start(self, k: int) -> int:
        """First frame of clip k."""
        return k * self.stride

    def clips_complete(self, frames_seen: int) -> int:
        """How many clips are complete after `frames_seen` frames."""
        _check_count(frames_seen)
        return 0 if frames_seen < self.length else (frames_seen - self.length) // self.stride + 1

    def clip_ready(self, frames_seen: int) -> bool:
        """Whether the frame that brought the count to `frames_seen` completed a clip."""
        _check_count(frames_seen)
        return frames_seen >= self.length and (frames_seen - self.length) % self.stride == 0

    def publish_at(self, index: int) -> int:
        """The frames_seen count at which frame `index` is published while the stream runs: when frame
        index + (T - T_c) arrives, or when clip 0 completes."""
        _check_count(index)
        return max(index + self.stride + 1, self.length)

    def tail_clip(self, frames_seen: int) -> tuple[int, int] | None:
        """(start, length) of the short final clip covering the frames after the last complete clip;
        None when complete clips cover all `frames_seen` frames."""
        k = self.clips_complete(frames_seen)
        covered = 0 if k == 0 else self.clip_start(k - 1) + self.length
        if frames_seen <= covered:
            return None
        start = self.clip_start(k)
        return start, frames_seen - start


class StitchedFrame(NamedTuple):
    """One published frame: its index in the stream, global-id label map (0 background), scores by id and,
    when the clip gave them, each id's probability map on the label map's grid."""

    index: int
    labels: np.ndarray  # (H, W) uint16
    scores: dict[int, float]
    probabilities: dict[int, np.ndarray] | None = None  # global id -> (H, W) float32


@dataclass
class _Clip:
    start: int
    labels: np.ndarray  # (L, H, W) uint16 global ids

    @property
    def end(self) -> int:
        return self.start + len(self.labels)


class Stitcher:
    """Links each clip's tubes to the previous clip's and publishes final frames on the schedule.

    Drive it once per received frame: `add_clip` when `schedule.clip_ready(n)`, else `advance(n)`;
    at the end `add_clip(*tail, final=True)` if `schedule.tail_clip(n)` is not None, then `flush()`;
    at a gap the same, then `restart()` and count frames from 0 again.
    """

    def __init__(self, schedule: ClipSchedule, min_iou: float = 0.1) -> None:
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"Stitcher min_iou must be in (0, 1], got {min_iou}")
        self.schedule = schedule
        self.min_iou = min_iou
        self._next_id = 1
        self._prev: _Clip | None = None
        self._queue: deque[StitchedFrame] = deque()
        self._next_publish = 0  # index of the next frame to publish
        self._ended = False
        self._anchor: np.ndarray | None = None  # (1, H, W) global ids of the last frame before a gap

    def reset(self) -> None:
        """Forget the stream (a new one starts at frame 0); global ids keep counting up."""
        self._prev = None
        self._queue.clear()
        self._next_publish = 0
        self._ended = False
        self._anchor = None

    def restart(self) -> None:
        """After a gap: a new clip sequence starts at frame 0, its first clip linked to the last frame of this
        one's last clip so the objects keep their ids. Every held frame must have been flushed first."""
        if self._queue:
            raise RuntimeError(f"Stitcher.restart: {len(self._queue)} frame(s) still held; flush() first")
        if self._prev is not None:
            self._anchor = self._prev.labels[-1:].copy()
        self._prev = None
        self._next_publish = 0
        self._ended = False

    def add_clip(self, start: int, tubes: Any, scores: dict[int, float] | None = None,
                 final: bool = False, probabilities: dict[int, np.ndarray] | None = None) -> list[StitchedFrame]:
        """Link a complete clip (frames [start, start + len(tubes))) and return the frames due now.

        `tubes` is a (T, H, W) integer array or tensor of local ids, 0 background; `scores` maps local
        id to confidence (every id present needs one; None gives 1.0); `probabilities` optionally maps
        every local id present to its (T, H, W) probability volume, handed on per frame under the global
        ids. A `final` clip ends the stream: it may be shorter than T and start before the next stride
        step (but must add frames).
        """
        clip = _label_volume(tubes)
        self._check_clip(start, clip, final)
        counts = np.bincount(clip.reshape(-1), minlength=1)
        local_ids = [int(i) for i in np.flatnonzero(counts[1:]) + 1]
        local_scores = _local_scores(scores, local_ids)
        local_probabilities = _local_probabilities(probabilities, local_ids, clip.shape)
        to_global = self._link(start, clip, local_ids)
        lut = np.zeros(len(counts), np.uint16)
        for local, gid in to_global.items():
            lut[local] = gid
        labels = lut[clip]
        first_new = start if self._prev is None else self._prev.end
        for f in range(first_new - start, len(clip)):
            present = np.flatnonzero(np.bincount(clip[f].reshape(-1), minlength=1)[1:]) + 1
            frame_scores = {int(to_global[int(i)]): local_scores[int(i)] for i in present}
            frame_probabilities = None if local_probabilities is None else {
                int(to_global[int(i)]): local_probabilities[int(i)][f] for i in present}
            self._queue.append(StitchedFrame(start + f, labels[f].copy(), frame_scores, frame_probabilities))
        self._prev = _Clip(start, labels)
        self._anchor = None
        self._ended = final
        return self.advance(start + len(clip))

    def advance(self, frames_seen: int) -> list[StitchedFrame]:
        """The held frames due once `frames_seen` frames have been received (rule 3), in order."""
        _check_count(frames_seen)
        last_final = self._queue[-1].index if self._queue else self._next_publish - 1
        if not self._ended and self.schedule.publish_at(last_final + 1) <= frames_seen:
            raise RuntimeError(f"Stitcher: frame {last_final + 1} is due at frames_seen {frames_seen} "
                               f"but no clip covering it was added")
        out = []
        while self._queue and self.schedule.publish_at(self._queue[0].index) <= frames_seen:
            out.append(self._queue.popleft())
        if out:
            self._next_publish = out[-1].index + 1
        return out

    def flush(self) -> list[StitchedFrame]:
        """Every final frame still held, in order; the stream has ended (reset() starts a new one)."""
        out = list(self._queue)
        self._queue.clear()
        if out:
            self._next_publish = out[-1].index + 1
        self._ended = True
        return out

    def _check_clip(self, start: int, clip: np.ndarray, final: bool) -> None:
        sched, prev, n = self.schedule, self._prev, len(clip)
        if n != sched.length and not (final and 1 <= n < sched.length):
            raise ValueError(f"Stitcher clip has {n} frames; ClipSchedule.length is {sched.length}"
                             + ("" if final else " (only a final clip may be shorter)"))
        if self._ended:
            raise ValueError("Stitcher: the stream has ended (final clip or flush); call reset() first")
        if prev is None:
            if start != 0:
                raise ValueError(f"Stitcher: the first clip of a stream must start at frame 0, got {start}")
            if self._anchor is not None and clip.shape[1:] != self._anchor.shape[1:]:
                raise ValueError(f"Stitcher clip frames are {clip.shape[1:]}, the frame before the gap's "
                                 f"{self._anchor.shape[1:]} (a new size is a new stream: reset())")
            return
        if clip.shape[1:] != prev.labels.shape[1:]:
            raise ValueError(f"Stitcher clip frames are {clip.shape[1:]}, the previous clip's {prev.labels.shape[1:]}")
        expected = prev.start + sched.stride
        if not final and start != expected:
            raise ValueError(f"Stitcher clip starts at frame {start}; the next clip starts at {expected}")
        if final and not (prev.start < start <= expected and start + n > prev.end):
            raise ValueError(f"Stitcher final clip [{start}, {start + n}) must start in ({prev.start}, {expected}] "
                             f"and end after frame {prev.end - 1}")

    def _link(self, start: int, clip: np.ndarray, local_ids: list[int]) -> dict[int, int]:
        """Global id for each local id: the matched previous track's, else a fresh one."""
        prev = self._prev
        matched: dict[int, int] = {}
        alive: set[int] = set()
        old = new = None
        if prev is not None:
            shared = prev.end - start
            if shared > 0:
                old, new = prev.labels[start - prev.start:], clip[:shared]
            else:  # overlap 0: the previous clip's last frame against the new clip's first
                old, new = prev.labels[-1:], clip[:1]
            alive = set(_present_ids(prev.labels))
        elif self._anchor is not None:  # after a gap: the last frame before it against the first after it
            old, new = self._anchor, clip[:1]
            alive = set(_present_ids(old))
        if old is not None:
            old_ids = _present_ids(old)
            new_ids = [i for i in local_ids if (new == i).any()]
            iou = mask_iou_matrix([old == g for g in old_ids], [new == i for i in new_ids])
            matched = {new_ids[c]: old_ids[r] for r, c in hungarian_match(iou, self.min_iou)}
        taken = alive | set(matched.values())
        return {i: matched[i] if i in matched else self._new_id(taken) for i in local_ids}

    def _new_id(self, taken: set[int]) -> int:
        while True:
            gid = self._next_id
            self._next_id = 1 if gid >= MAX_TRACK_ID else gid + 1
            if gid not in taken:
                taken.add(gid)
                return gid


def _present_ids(labels: np.ndarray) -> list[int]:
    """The non-zero ids present in a global-id label volume, ascending."""
    return [int(g) for g in np.flatnonzero(np.bincount(labels.reshape(-1), minlength=1)[1:]) + 1]


def _check_count(value: int) -> None:
    if value < 0:
        raise ValueError(f"frame count/index must be >= 0, got {value}")


def _label_volume(tubes: Any) -> np.ndarray:
    """The clip's tubes as a (T, H, W) integer numpy array, checked."""
    if hasattr(tubes, "detach"):  # a torch tensor, possibly on the GPU
        tubes = tubes.detach().cpu().numpy()
    arr = np.asarray(tubes)
    if arr.ndim != 3:
        raise ValueError(f"Stitcher tubes must be (T, H, W) ids, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"Stitcher tubes must hold integer ids (0 background), got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"Stitcher tubes are empty: shape {arr.shape}")
    low, high = int(arr.min()), int(arr.max())
    if low < 0 or high > MAX_LOCAL_ID:
        raise ValueError(f"Stitcher tube ids must be in [0, {MAX_LOCAL_ID}], got [{low}, {high}]")
    return arr.astype(np.int64) if arr.dtype == np.uint64 else arr  # np.bincount cannot take uint64


def _local_scores(scores: dict[int, float] | None, local_ids: list[int]) -> dict[int, float]:
    if scores is None:
        return {i: 1.0 for i in local_ids}
    given = {int(k): float(v) for k, v in scores.items()}
    missing = [i for i in local_ids if i not in given]
    if missing:
        raise ValueError(f"Stitcher scores have no entry for tube id(s) {missing}")
    return {i: given[i] for i in local_ids}


def _local_probabilities(probabilities: dict[int, np.ndarray] | None, local_ids: list[int],
                         shape: tuple[int, ...]) -> dict[int, np.ndarray] | None:
    """Each present tube's (T, H, W) float32 probability volume, checked against the clip's shape."""
    if probabilities is None:
        return None
    out = {}
    for i in local_ids:
        if i not in probabilities:
            raise ValueError(f"Stitcher probabilities have no entry for tube id {i}")
        volume = np.asarray(probabilities[i], dtype=np.float32)
        if volume.shape != tuple(shape):
            raise ValueError(f"Stitcher probabilities of tube id {i} are {volume.shape}, the tubes {tuple(shape)}")
        out[i] = volume
    return out
