"""The overlap tracker: thresholds, Hungarian matching, lost tracks, static continuation, offline pass."""

from __future__ import annotations

import numpy as np

import pytest
from core_helpers import blank_frame, disc, frame, iou, rect, textured, translate, translation

from movseg_ros.frame import Frame
from movseg_ros.output import TrackStatus
from movseg_ros.segmenters.base import Detection, MotionContext, SegmenterResult
from movseg_ros.tracker import (
    Tracker,
    TrackerConfig,
    carry_mask,
    hungarian_match,
    mask_box,
    mask_iou_matrix,
    track_offline,
)

SHAPE = (120, 160)
NO_CARRY = TrackerConfig(static_continuation=False)


def result(index: int, *detections: Detection, motion: MotionContext | None = None,
           image: np.ndarray | None = None) -> SegmenterResult:
    """A segmenter result for frame `index`: the motion's current image, or `image`, or a blank."""
    if image is None and motion is not None:
        image = motion.current
    frame = blank_frame(index, SHAPE) if image is None else Frame(image, (index + 1) * 100_000_000, "camera", index)
    return SegmenterResult(frame, list(detections), motion)


def box_at(x: int, y: int = 40, size: int = 30) -> np.ndarray:
    return rect(SHAPE, x, y, x + size, y + size)


# --- helpers: IoU matrix, Hungarian matching, boxes ---------------------------------------------


def test_mask_iou_matrix_pairs_every_mask() -> None:
    a = [rect(SHAPE, 0, 0, 10, 10), rect(SHAPE, 50, 50, 60, 60)]
    b = [rect(SHAPE, 5, 0, 15, 10), rect(SHAPE, 50, 50, 60, 60), np.zeros(SHAPE, bool)]
    m = mask_iou_matrix(a, b)
    assert m.shape == (2, 3)
    assert m[0, 0] == pytest.approx(50 / 150)
    assert m[1, 1] == 1.0
    assert m[0, 1] == 0.0 and m[1, 0] == 0.0
    assert np.all(m[:, 2] == 0.0)  # an empty mask overlaps nothing (and does not divide by zero)
    assert mask_iou_matrix([], b).shape == (0, 3)


def test_mask_iou_matrix_equals_the_iou_of_whole_masks_for_scattered_masks() -> None:
    rng = np.random.default_rng(3)
    masks = [rng.random(SHAPE) < 0.02, np.zeros(SHAPE, bool)]  # pixels everywhere; nothing
    for x0, y0, x1, y1 in ((0, 0, 40, 30), (30, 20, 90, 70), (70, 60, 100, 80), (5, 50, 20, 79)):
        masks.append(rect(SHAPE, x0, y0, x1, y1) & (rng.random(SHAPE) < 0.7))
    m = mask_iou_matrix(masks, masks[::-1])
    for i, a in enumerate(masks):
        for j, b in enumerate(masks[::-1]):
            union = np.count_nonzero(a | b)
            assert m[i, j] == pytest.approx(np.count_nonzero(a & b) / union if union else 0.0, rel=1e-6)
    clip_a, clip_b = np.stack(masks[2:4]), np.stack(masks[3:5])  # stacks of frames (stem_seg's clips) too
    want = np.count_nonzero(clip_a & clip_b) / np.count_nonzero(clip_a | clip_b)
    assert mask_iou_matrix([clip_a], [clip_b])[0, 0] == pytest.approx(want, rel=1e-6)


def test_hungarian_maximises_total_iou_where_greedy_would_not() -> None:
    # Greedy would pair track 0 with detection 1 (0.6, the best single pair) and leave track 1
    # without a match; the optimal assignment is 0-0 and 1-1 (0.5 + 0.55).
    iou_m = np.array([[0.5, 0.6], [0.0, 0.55]])
    assert sorted(hungarian_match(iou_m, min_iou=0.2)) == [(0, 0), (1, 1)]


def test_hungarian_drops_pairs_under_min_iou() -> None:
    iou_m = np.array([[0.9, 0.0], [0.0, 0.1]])
    assert hungarian_match(iou_m, min_iou=0.2) == [(0, 0)]
    assert hungarian_match(np.zeros((0, 3)), min_iou=0.2) == []


def test_mask_box_is_end_exclusive() -> None:
    assert mask_box(rect(SHAPE, 10, 20, 30, 25)) == (10, 20, 30, 25)
    assert mask_box(np.zeros(SHAPE, bool)) == (0, 0, 0, 0)


# --- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"alpha_low": 0.95, "alpha_high": 0.9}, "alpha_low"),
        ({"alpha_low": -0.1}, "alpha_low"),
        ({"alpha_high": 1.5}, "alpha_high"),
        ({"t_inactive": -1}, "t_inactive"),
        ({"min_iou": 0.0}, "min_iou"),
        ({"min_iou": 1.5}, "min_iou"),
    ],
)
def test_bad_config_is_rejected(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        TrackerConfig(**kwargs)


def test_equal_thresholds_are_allowed() -> None:
    assert TrackerConfig(alpha_low=0.8, alpha_high=0.8).alpha_low == 0.8


# --- starting and dropping ---------------------------------------------------------------------


def test_detection_under_alpha_low_is_dropped_even_over_a_track() -> None:
    tr = Tracker(NO_CARRY)
    (t,) = tr.update(result(0, Detection(box_at(20), 0.95))).tracks
    out = tr.update(result(1, Detection(box_at(20), 0.69)))  # same place, score just under 0.7
    assert [(s.id, s.status) for s in out.tracks] == [(t.id, TrackStatus.LOST)]
    assert not out.label_map.any()


def test_middling_moving_detection_continues_but_does_not_start_a_track() -> None:
    tr = Tracker(NO_CARRY)
    out = tr.update(result(0, Detection(box_at(20), 0.8)))
    assert out.tracks == []
    out = tr.update(result(1, Detection(box_at(22), 0.95)))
    (started,) = out.tracks
    assert started.status == TrackStatus.VISIBLE and started.moving
    out = tr.update(result(2, Detection(box_at(24), 0.8)))  # between alpha_low and alpha_high: continues
    (cont,) = out.tracks
    assert cont.id == started.id and cont.status == TrackStatus.VISIBLE
    assert cont.score == pytest.approx(0.8)


def test_score_exactly_alpha_high_does_not_start_a_track() -> None:
    tr = Tracker(TrackerConfig(alpha_high=0.9))
    assert tr.update(result(0, Detection(box_at(20), 0.9))).tracks == []


def test_static_detection_never_starts_but_continues_a_track() -> None:
    tr = Tracker(NO_CARRY)
    for i in range(3):
        assert tr.update(result(i, Detection(box_at(20), 0.99, moving=False))).tracks == []
    (moving,) = tr.update(result(3, Detection(box_at(20), 0.95, moving=True))).tracks
    assert moving.moving
    (still,) = tr.update(result(4, Detection(box_at(20), 0.99, moving=False))).tracks
    assert still.id == moving.id
    assert still.status == TrackStatus.VISIBLE
    assert still.moving is False
    assert still.hits == 2


# --- association -------------------------------------------------------------------------------


def test_object_moving_a_few_pixels_per_frame_keeps_its_id() -> None:
    tr = Tracker(NO_CARRY)
    ids, ages = set(), []
    for i in range(20):
        (t,) = tr.update(result(i, Detection(disc(SHAPE, 30 + 4 * i, 60, 15), 0.95))).tracks
        assert t.status == TrackStatus.VISIBLE and t.moving
        ids.add(t.id)
        ages.append(t.age)
    assert len(ids) == 1
    assert t.hits == 20
    assert np.all(np.diff(ages) == 1)  # one frame older each frame


def test_two_objects_keep_their_ids_whatever_the_detection_order() -> None:
    tr = Tracker(NO_CARRY)
    first = None
    for i in range(17):
        a = Detection(rect(SHAPE, 10 + 5 * i, 20, 40 + 5 * i, 60), 0.95)  # moving right
        b = Detection(rect(SHAPE, 120 - 5 * i, 50, 150 - 5 * i, 90), 0.96)  # moving left, lower
        dets = (a, b) if i % 2 == 0 else (b, a)  # the segmenter's order means nothing
        out = tr.update(result(i, *dets))
        by_id = {t.id: t for t in out.visible}
        assert len(by_id) == 2
        id_of_a = next(tid for tid, t in by_id.items() if iou(t.mask, a.mask) == 1.0)
        id_of_b = next(tid for tid, t in by_id.items() if iou(t.mask, b.mask) == 1.0)
        if first is None:
            first = (id_of_a, id_of_b)
        assert (id_of_a, id_of_b) == first
        assert out.label_map[a.mask & ~b.mask].max() == id_of_a
    # The boxes swapped sides (overlapping in the middle frames) and the ids did not swap.
    assert mask_box(a.mask)[0] > mask_box(b.mask)[0]


def test_hungarian_assignment_through_the_tracker() -> None:
    """Track A overlaps both detections; greedy best-pair-first would steal B's detection."""
    tr = Tracker(TrackerConfig(static_continuation=False, min_iou=0.1))
    a0 = rect(SHAPE, 0, 0, 40, 40)
    b0 = rect(SHAPE, 40, 0, 80, 40)
    out = tr.update(result(0, Detection(a0, 0.95), Detection(b0, 0.95)))
    id_a = next(t.id for t in out.visible if np.array_equal(t.mask, a0))
    id_b = next(t.id for t in out.visible if np.array_equal(t.mask, b0))
    # Next frame: d0 overlaps A a little; d1 overlaps A more than d0 does, and B too.
    d0 = rect(SHAPE, 0, 20, 40, 60)  # IoU with A: 800/2400
    d1 = rect(SHAPE, 15, 0, 55, 40)  # IoU with A: 1000/2200, with B: 600/2600
    iou_m = mask_iou_matrix([a0, b0], [d0, d1])
    assert iou_m[0, 1] > iou_m[0, 0]  # greedy would give d1 to A and leave B unmatched
    out = tr.update(result(1, Detection(d0, 0.95), Detection(d1, 0.95)))
    by_id = {t.id: t for t in out.visible}
    assert set(by_id) == {id_a, id_b}  # both continue, no new track
    assert np.array_equal(by_id[id_a].mask, d0)
    assert np.array_equal(by_id[id_b].mask, d1)


# --- lost tracks -------------------------------------------------------------------------------


def run_gap(gap: int, t_inactive: int = 3) -> tuple[int, int, list]:
    """An object seen, missed for `gap` frames, then seen again where it was."""
    tr = Tracker(TrackerConfig(static_continuation=False, t_inactive=t_inactive))
    (before,) = tr.update(result(0, Detection(box_at(50), 0.95))).tracks
    during = [tr.update(result(1 + k)) for k in range(gap)]
    after = tr.update(result(1 + gap, Detection(box_at(52), 0.95)))
    (t,) = after.visible
    return before.id, t.id, during


@pytest.mark.parametrize("gap", [1, 3])
def test_track_missed_for_up_to_t_inactive_frames_keeps_its_id(gap: int) -> None:
    before, after, during = run_gap(gap, t_inactive=3)
    assert after == before
    for out in during:
        (t,) = out.tracks
        assert t.id == before and t.status == TrackStatus.LOST
        assert t.mask is None and t.moving is False
        assert not out.label_map.any()


def test_track_missed_for_longer_than_t_inactive_ends() -> None:
    before, after, during = run_gap(4, t_inactive=3)
    assert [len(o.tracks) for o in during] == [1, 1, 1, 0]  # LOST three times, then gone
    assert after != before  # the re-appearing object is a new track


def test_t_inactive_zero_ends_a_track_at_its_first_miss() -> None:
    before, after, during = run_gap(1, t_inactive=0)
    assert during[0].tracks == []
    assert after != before


def test_reset_forgets_tracks_but_ids_keep_counting() -> None:
    tr = Tracker(NO_CARRY)
    (t1,) = tr.update(result(0, Detection(box_at(50), 0.95))).tracks
    tr.reset()
    (t2,) = tr.update(result(1, Detection(box_at(50), 0.95))).tracks
    assert t2.id != t1.id and t2.hits == 1


# --- output ------------------------------------------------------------------------------------


def test_label_map_is_uint16_with_track_ids() -> None:
    tr = Tracker(NO_CARRY)
    a, b = disc(SHAPE, 40, 60, 20), rect(SHAPE, 100, 20, 140, 100)
    out = tr.update(result(0, Detection(a, 0.95), Detection(b, 0.97)))
    lm = out.label_map
    assert lm.dtype == np.uint16 and lm.shape == SHAPE
    by_mask = {t.id: t.mask for t in out.tracks}
    assert set(np.unique(lm)) == {0, *by_mask}
    for tid, m in by_mask.items():
        assert np.all(lm[m] == tid)
    assert not lm[~(a | b)].any()
    assert np.array_equal(out.foreground(), a | b)


def test_higher_score_is_painted_on_top() -> None:
    tr = Tracker(NO_CARRY)
    low, high = rect(SHAPE, 0, 0, 60, 60), rect(SHAPE, 30, 30, 90, 90)
    out = tr.update(result(0, Detection(low, 0.92), Detection(high, 0.99)))
    id_high = next(t.id for t in out.tracks if t.score == pytest.approx(0.99))
    assert np.all(out.label_map[low & high] == id_high)


@pytest.mark.parametrize("step", [4, -4])
def test_velocity_follows_the_motion_in_pixels_per_second(step: int) -> None:
    tr = Tracker(NO_CARRY)
    period_s = 0.1  # frames 100 ms apart
    for i in range(8):
        (t,) = tr.update(result(i, Detection(box_at(60 + step * i), 0.95))).tracks
    speed = step / period_s  # 40 px/s
    vx, vy = t.velocity
    assert np.sign(vx) == np.sign(step)
    assert 0.9 * abs(speed) < abs(vx) <= abs(speed) + 1e-6  # smoothed, converging to the true speed
    assert vy == pytest.approx(0.0)
    assert t.box == (60 + step * 7, 40, 90 + step * 7, 70)


# --- static continuation -----------------------------------------------------------------------

OBJ = (60, 40, 100, 80)  # x0, y0, x1, y1 of the object in the previous frame
CAMERA = (3, 2)  # camera motion between the previous and the current frame, pixels


def stopped_object_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Previous image with a distinct object, current image = previous moved by the camera."""
    prev = textured(*SHAPE, seed=2)
    prev[OBJ[1] : OBJ[3], OBJ[0] : OBJ[2]] = textured(OBJ[3] - OBJ[1], OBJ[2] - OBJ[0], seed=3)
    cur = translate(prev, *CAMERA)
    return prev, cur, rect(SHAPE, *OBJ)


def track_that_moved_into(mask: np.ndarray, hits: int, config: TrackerConfig = TrackerConfig(),
                          image: np.ndarray | None = None) -> tuple[Tracker, int]:
    """A tracker with one track seen moving `hits` times, ending at `mask`, over `image`
    (default: the stopped-object scene's previous frame, so the track learns the object's look)."""
    image = stopped_object_scene()[0] if image is None else image
    tr = Tracker(config)
    for i in range(hits):
        shift = 2 * (hits - 1 - i)
        (t,) = tr.update(result(i, Detection(np.roll(mask, -shift, axis=1), 0.95), image=image)).visible
    return tr, t.id


def test_carry_mask_moves_a_static_object_with_the_camera() -> None:
    prev, cur, mask = stopped_object_scene()
    carried = carry_mask(mask, MotionContext(prev, cur, translation(*CAMERA)), max_diff=12.0)
    assert carried is not None
    assert np.array_equal(carried, np.roll(mask, CAMERA[::-1], axis=(0, 1)))


def test_stopped_object_is_continued_by_ego_motion() -> None:
    prev, cur, mask = stopped_object_scene()
    tr, tid = track_that_moved_into(mask, hits=3)
    out = tr.update(result(3, motion=MotionContext(prev, cur, translation(*CAMERA))))  # no detection
    (t,) = out.tracks
    assert t.id == tid
    assert t.status == TrackStatus.VISIBLE
    assert t.moving is False
    expected = rect(SHAPE, OBJ[0] + CAMERA[0], OBJ[1] + CAMERA[1], OBJ[2] + CAMERA[0], OBJ[3] + CAMERA[1])
    assert iou(t.mask, expected) > 0.9
    assert np.all(out.label_map[t.mask] == tid)


def test_partial_detection_of_a_stopping_object_is_completed_by_the_carry() -> None:
    """Slowing down, only part of the object shows motion: the track keeps the whole object."""
    prev, cur, mask = stopped_object_scene()
    tr, tid = track_that_moved_into(mask, hits=3)
    expected = rect(SHAPE, OBJ[0] + CAMERA[0], OBJ[1] + CAMERA[1], OBJ[2] + CAMERA[0], OBJ[3] + CAMERA[1])
    fragment = rect(SHAPE, OBJ[0] + CAMERA[0], OBJ[1] + CAMERA[1], OBJ[0] + CAMERA[0] + 12, OBJ[3] + CAMERA[1])
    (t,) = tr.update(result(3, Detection(fragment, 0.95), motion=MotionContext(prev, cur, translation(*CAMERA)))).tracks
    assert t.id == tid and t.moving is True
    assert iou(t.mask, expected) > 0.9
    (t,) = Tracker().update(result(0, Detection(fragment, 0.95))).tracks  # a new track has nothing to complete
    assert iou(t.mask, fragment) == 1.0


def test_object_that_left_is_not_continued() -> None:
    prev, cur, mask = stopped_object_scene()
    # The object is gone: where it would be, the current frame shows other content.
    x0, y0, x1, y1 = (OBJ[0] + CAMERA[0], OBJ[1] + CAMERA[1], OBJ[2] + CAMERA[0], OBJ[3] + CAMERA[1])
    cur[y0:y1, x0:x1] = textured(y1 - y0, x1 - x0, seed=7)
    tr, tid = track_that_moved_into(mask, hits=3)
    (t,) = tr.update(result(3, motion=MotionContext(prev, cur, translation(*CAMERA)))).tracks
    assert t.id == tid and t.status == TrackStatus.LOST


def test_track_on_static_background_is_not_kept_as_a_ghost() -> None:
    """The image under the carried mask is static, but it is background, not the object any more."""
    prev, _, mask = stopped_object_scene()
    red_object = prev.copy()
    red_object[mask] = (red_object[mask] * np.array([1.0, 0.3, 0.3])).astype(np.uint8)
    background = textured(*SHAPE, seed=2)
    bg_cur = translate(background, *CAMERA)
    tr, tid = track_that_moved_into(mask, hits=3, image=red_object)  # learned a red object's look
    (t,) = tr.update(result(3, motion=MotionContext(background, bg_cur, translation(*CAMERA)))).tracks
    assert t.id == tid and t.status == TrackStatus.LOST
    assert carry_mask(mask, MotionContext(background, bg_cur, translation(*CAMERA)), 12.0) is not None


def test_young_track_is_not_continued_from_static_evidence() -> None:
    prev, cur, mask = stopped_object_scene()
    tr, tid = track_that_moved_into(mask, hits=2)  # static_min_hits is 3
    (t,) = tr.update(result(2, motion=MotionContext(prev, cur, translation(*CAMERA)))).tracks
    assert t.id == tid and t.status == TrackStatus.LOST


def test_static_continuation_can_be_switched_off() -> None:
    prev, cur, mask = stopped_object_scene()
    tr, tid = track_that_moved_into(mask, hits=5, config=NO_CARRY)
    (t,) = tr.update(result(5, motion=MotionContext(prev, cur, translation(*CAMERA)))).tracks
    assert t.status == TrackStatus.LOST


def test_static_evidence_does_not_start_tracks() -> None:
    prev, cur, _ = stopped_object_scene()
    tr = Tracker()
    out = tr.update(result(0, motion=MotionContext(prev, cur, translation(*CAMERA))))
    assert out.tracks == []


# --- offline forward-backward tracking ---------------------------------------------------------

STILL_FRAMES = 5  # the object sits still in frames 0..4, then moves right 3 px a frame
OFFLINE_FRAMES = 12


def offline_sequence() -> tuple[list[SegmenterResult], list[np.ndarray]]:
    """Static camera; the segmenter only sees the object once it moves."""
    bg = textured(*SHAPE, seed=4)
    obj = np.zeros((30, 30, 3), np.uint8)
    obj[:] = (200, 40, 40)  # a flat red object with a darker inner square
    obj[8:22, 8:22] = (120, 20, 20)
    images, truths = [], []
    for i in range(OFFLINE_FRAMES):
        x = 40 + 3 * max(0, i - STILL_FRAMES + 1)
        img = bg.copy()
        img[50:80, x : x + 30] = obj
        images.append(img)
        truths.append(rect(SHAPE, x, 50, x + 30, 80))
    results = []
    for i, img in enumerate(images):
        moving = i >= STILL_FRAMES
        dets = [Detection(truths[i], 0.95, moving=True)] if moving else []
        motion = MotionContext(images[i - 1], img, np.eye(3)) if i > 0 else None
        results.append(SegmenterResult(frame(img, i), dets, motion))
    return results, truths


def test_forward_pass_alone_misses_the_still_frames() -> None:
    results, _ = offline_sequence()
    tr = Tracker()
    outs = [tr.update(r) for r in results]
    assert all(o.tracks == [] for o in outs[:STILL_FRAMES])
    assert all(len(o.visible) == 1 for o in outs[STILL_FRAMES:])


def test_track_offline_fills_the_still_frames_with_the_forward_id() -> None:
    results, truths = offline_sequence()
    merged = track_offline(results)
    assert len(merged) == OFFLINE_FRAMES
    fwd_ids = {t.id for o in merged[STILL_FRAMES:] for t in o.visible}
    assert len(fwd_ids) == 1
    (tid,) = fwd_ids
    for i, o in enumerate(merged):
        assert [t.id for t in o.visible] == [tid], f"frame {i}"
        assert iou(o.label_map == tid, truths[i]) > 0.8, f"frame {i}"
        assert o.frame.index == i


def test_track_offline_keeps_a_track_through_middling_scores() -> None:
    """Forward tracking inside track_offline must carry state from frame to frame.

    A track started at 0.95 continues through 0.8 detections (between alpha_low and alpha_high),
    exactly as the online Tracker does; the offline result should not lose those frames.
    """
    results = [
        result(i, Detection(box_at(20 + 3 * i), 0.95 if i == 0 else 0.8)) for i in range(6)
    ]
    tr = Tracker()
    online = [tr.update(r) for r in results]
    assert all(len(o.visible) == 1 for o in online)  # the online tracker sees it in every frame
    offline = track_offline(results)
    assert [len(o.visible) for o in offline] == [1] * 6
