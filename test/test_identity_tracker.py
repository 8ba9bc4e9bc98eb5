"""IdentityTracker: track states from detections that carry their object's id (stem_seg's stitched tubes)."""

from __future__ import annotations

import numpy as np
import pytest

from movseg_ros.frame import Frame
from movseg_ros.identity_tracker import IdentityTracker
from movseg_ros.output import TrackStatus
from movseg_ros.segmenters.base import Detection, SegmenterResult
from movseg_ros.tracker import TrackerConfig

H, W = 20, 30


def _frame(i: int) -> Frame:
    return Frame(np.zeros((H, W, 3), np.uint8), 1_000_000_000 + i * 100_000_000, "cam", i)


def _box(x0: int, y0: int, w: int = 4, h: int = 4) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y0 + h, x0:x0 + w] = True
    return m


def test_ids_pass_through_with_age_hits_velocity_and_lost_status() -> None:
    tracker = IdentityTracker(TrackerConfig(t_inactive=2))
    out0 = tracker.update(SegmenterResult(_frame(0), [Detection(_box(2, 2), 0.9, True, identity=7),
                                                      Detection(_box(20, 10), 0.6, True, identity=3)]))
    assert sorted(t.id for t in out0.tracks) == [3, 7]
    assert set(np.unique(out0.label_map)) == {0, 3, 7}
    out1 = tracker.update(SegmenterResult(_frame(1), [Detection(_box(4, 2), 0.8, True, identity=7)]))
    by_id = {t.id: t for t in out1.tracks}
    assert by_id[7].status == TrackStatus.VISIBLE and by_id[7].age == 1 and by_id[7].hits == 2
    assert by_id[7].velocity[0] == pytest.approx(0.5 * 2 / 0.1)  # 2 px in 0.1 s, smoothed by half
    assert by_id[3].status == TrackStatus.LOST and by_id[3].mask is None and not by_id[3].moving
    assert 3 not in np.unique(out1.label_map)
    for i in (2, 3):
        out = tracker.update(SegmenterResult(_frame(i), [Detection(_box(4, 2), 0.8, True, identity=7)]))
    assert [t.id for t in out.tracks] == [7]  # id 3 unseen for more than t_inactive = 2 frames: ended
    out = tracker.update(SegmenterResult(_frame(4), [Detection(_box(20, 10), 0.7, True, identity=3)]))
    assert {t.id: t.age for t in out.tracks}[3] == 0  # a new track with the segmenter's id


def test_detections_without_identity_are_an_error_and_reset_forgets() -> None:
    tracker = IdentityTracker()
    with pytest.raises(ValueError, match="identity"):
        tracker.update(SegmenterResult(_frame(0), [Detection(_box(2, 2), 0.9, True)]))
    tracker.update(SegmenterResult(_frame(0), [Detection(_box(2, 2), 0.9, True, identity=5)]))
    tracker.reset()
    out = tracker.update(SegmenterResult(_frame(1), []))
    assert out.tracks == [] and not out.label_map.any()
