"""Track states for segmenters that link objects over time themselves (stem_seg's stitched tubes).

Each detection carries its object's `identity`; this keeps what the overlap tracker would report
about it (age, hits, velocity, status), so every pipeline publishes the same track messages. A track
unseen for more than t_inactive frames ends, as in the overlap tracker; ids come from the segmenter.
"""

from __future__ import annotations

from dataclasses import dataclass

from movseg_ros.output import FrameOutput, TrackState, TrackStatus, label_map_of
from movseg_ros.segmenters.base import SegmenterResult
from movseg_ros.tracker import TrackerConfig, mask_box


@dataclass
class _Seen:
    start_index: int
    box: tuple[int, int, int, int]
    centre: tuple[float, float]
    stamp_ns: int
    score: float
    moving: bool
    hits: int = 1
    misses: int = 0
    velocity: tuple[float, float] = (0.0, 0.0)


class IdentityTracker:
    """FrameOutputs from detections that already carry identities (the tracker's thresholds do not apply)."""

    def __init__(self, config: TrackerConfig = TrackerConfig()) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        self._tracks: dict[int, _Seen] = {}
        self._index = 0

    def update(self, result: SegmenterResult) -> FrameOutput:
        frame = result.frame
        states: list[TrackState] = []
        seen_now: set[int] = set()
        for d in result.detections:
            if d.identity is None:
                raise ValueError(f"{type(self).__name__} needs detections with an identity (frame {frame.index})")
            if d.identity in seen_now or not d.mask.any():
                continue
            seen_now.add(d.identity)
            box = mask_box(d.mask)
            centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            t = self._tracks.get(d.identity)
            if t is None:
                t = self._tracks[d.identity] = _Seen(self._index, box, centre, frame.stamp_ns, d.score, d.moving, hits=0)
            dt = (frame.stamp_ns - t.stamp_ns) * 1e-9
            if dt > 0:
                v = ((centre[0] - t.centre[0]) / dt, (centre[1] - t.centre[1]) / dt)
                t.velocity = (0.5 * t.velocity[0] + 0.5 * v[0], 0.5 * t.velocity[1] + 0.5 * v[1])
            t.box, t.centre, t.stamp_ns, t.score, t.moving = box, centre, frame.stamp_ns, d.score, d.moving
            t.hits += 1
            t.misses = 0
            states.append(TrackState(d.identity, d.mask, box, float(d.score), bool(d.moving), TrackStatus.VISIBLE,
                                     self._index - t.start_index, t.hits, t.velocity))
        for tid, t in list(self._tracks.items()):
            if tid in seen_now:
                continue
            t.misses += 1
            if t.misses > self.config.t_inactive:
                del self._tracks[tid]
                continue
            states.append(TrackState(tid, None, t.box, float(t.score), False, TrackStatus.LOST,
                                     self._index - t.start_index, t.hits, t.velocity))
        self._index += 1
        return FrameOutput(frame, states, label_map_of([s for s in states if s.status == TrackStatus.VISIBLE], frame.size))
