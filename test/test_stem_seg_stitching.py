"""STEm-Seg clip stitching: stable global ids across overlapping clips, the publication schedule, bad input."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from movseg_ros.stem_seg.stitching import ClipSchedule, StitchedFrame, Stitcher

H, W = 20, 30
A, B, C = 1, 2, 3  # object numbers in the rendered ground truth


def disc(cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def discs_at(t: int) -> dict[int, np.ndarray]:
    """A moves left to right all the time; B is there in frames 6..10 only; C moves right to left,
    enters at frame 2 and crosses A in frames 8-9 (the overlap of clips 1 and 2 for T=6, T_c=2)."""
    out = {A: disc(3 + 1.8 * t, 8, 3.2), C: disc(18.3 - 2.0 * (t - 8.5), 11, 3.2)}
    if 6 <= t <= 10:
        out[B] = disc(5 + 0.5 * (t - 6), 15, 3.0)
    return {k: m for k, m in out.items() if m.any()}


def render(frames: range, a_on_top: bool = False) -> np.ndarray:
    """Object-number tubes (L, H, W) for the frames; C is drawn over A unless `a_on_top` (a segmenter
    that resolves the occlusion differently in another clip)."""
    order = [C, B, A] if a_on_top else [A, B, C]
    out = np.zeros((len(frames), H, W), np.int64)
    for f, t in enumerate(frames):
        d = discs_at(t)
        for obj in order:
            if obj in d:
                out[f][d[obj]] = obj
    return out


def clip_tubes(start: int, length: int, rng: np.random.Generator) -> tuple[np.ndarray, dict, dict[int, int]]:
    """One clip as a segmenter would give it: random local ids (a fresh permutation every clip), per-id
    scores, and the local id of each object."""
    truth = render(range(start, start + length), a_on_top=start == 8)
    local = dict(zip((A, B, C), (int(i) for i in rng.choice(np.arange(1, 10), 3, replace=False))))
    tubes = np.zeros_like(truth)
    for obj, lid in local.items():
        tubes[truth == obj] = lid
    scores = {lid: 0.5 + 0.1 * obj for obj, lid in local.items()}
    return tubes, scores, local


def drive(sched: ClipSchedule, n_frames: int, seed: int = 0, full_tail: bool = False):
    """Feed a stream frame by frame as the node will; returns [(frames_seen, frame, from_flush)] and the
    object->local-id map and start of each clip added."""
    rng = np.random.default_rng(seed)
    st = Stitcher(sched)
    published, clips = [], {}

    def add(start: int, length: int, final: bool = False) -> list[StitchedFrame]:
        tubes, scores, local = clip_tubes(start, length, rng)
        clips[start] = (local, length)
        return st.add_clip(start, tubes, scores, final=final)

    for n in range(1, n_frames + 1):
        if sched.clip_ready(n):
            out = add(sched.clip_start(sched.clips_complete(n) - 1), sched.length)
        else:
            out = st.advance(n)
        published += [(n, f, False) for f in out]
    tail = sched.tail_clip(n_frames)
    if tail is not None:
        start, length = (max(0, n_frames - sched.length), min(n_frames, sched.length)) if full_tail else tail
        published += [(n_frames, f, False) for f in add(start, length, final=True)]
    published += [(n_frames, f, True) for f in st.flush()]
    return published, clips


def source_clip(i: int, clips: dict) -> int:
    """Start of the earliest clip containing frame i (the clip it must be published from)."""
    return min(s for s, (_, length) in clips.items() if s <= i < s + length)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_ids_stay_stable_across_three_overlapping_clips(seed: int) -> None:
    sched = ClipSchedule(length=6, overlap=2)
    published, clips = drive(sched, 14, seed)
    assert sorted(clips) == [0, 4, 8]
    assert [f.index for _, f, _ in published] == list(range(14))
    assert [f.index for _, f, flushed in published if flushed] == [10, 11, 12, 13]  # the last T - T_c frames
    gid: dict[int, int] = {}  # object -> global id, from the first frame it is published in
    for _, f, _ in published:
        start = source_clip(f.index, clips)
        truth = render(range(f.index, f.index + 1), a_on_top=start == 8)[0]
        for obj in np.unique(truth[truth > 0]):
            ids = np.unique(f.labels[truth == obj])
            assert len(ids) == 1, f"frame {f.index}: object {obj} split over ids {ids}"
            gid.setdefault(int(obj), int(ids[0]))
        expected = np.zeros((H, W), np.uint16)
        for obj, g in gid.items():
            expected[truth == obj] = g
        assert f.labels.dtype == np.uint16
        np.testing.assert_array_equal(f.labels, expected, err_msg=f"frame {f.index} (from clip at {start})")
        assert f.scores == {gid[o]: pytest.approx(0.5 + 0.1 * o) for o in np.unique(truth[truth > 0]).tolist()}
    assert sorted(gid) == [A, B, C] and len(set(gid.values())) == 3
    first_b = min(f.index for _, f, _ in published if (f.labels == gid[B]).any())
    assert first_b == 6
    assert all(gid[B] not in f.labels for _, f, _ in published if f.index < 6)  # B's id is new when it enters


@pytest.mark.parametrize("length,overlap,n_frames", [(6, 2, 14), (5, 0, 13), (4, 3, 11), (6, 2, 17), (6, 2, 4)])
@pytest.mark.parametrize("full_tail", [False, True])
def test_latency_is_stride_in_steady_state(length: int, overlap: int, n_frames: int, full_tail: bool) -> None:
    sched = ClipSchedule(length, overlap)
    s = length - overlap
    assert sched.latency_frames == s
    published, _ = drive(sched, n_frames, full_tail=full_tail)
    assert [f.index for _, f, _ in published] == list(range(n_frames))
    for n, f, flushed in published:
        if flushed:
            assert sched.publish_at(f.index) > n_frames  # only frames not yet due are left for flush()
        else:
            assert n == sched.publish_at(f.index) == max(f.index + s + 1, length)
            if n > length:
                assert f.index == n - 1 - s  # steady state: frame i comes out when frame i + (T - T_c) arrives
    per_n = Counter(n for n, _, flushed in published if not flushed)
    assert sum(per_n.values()) == (n_frames - s if n_frames >= length else 0)
    if n_frames >= length:
        assert per_n[length] == overlap  # start-up: frames 0..T_c-1 together
    assert all(per_n[n] == 1 for n in range(length + 1, n_frames + 1))  # then one per frame received


def test_schedule_counts_and_tail() -> None:
    sched = ClipSchedule(length=6, overlap=2)
    assert [n for n in range(20) if sched.clip_ready(n)] == [6, 10, 14, 18]
    assert [sched.clips_complete(n) for n in (0, 5, 6, 9, 10, 14)] == [0, 0, 1, 1, 2, 3]
    assert sched.tail_clip(14) is None and sched.tail_clip(0) is None
    assert sched.tail_clip(11) == (8, 3) and sched.tail_clip(4) == (0, 4) and sched.tail_clip(15) == (12, 3)


def _stream(n: int, objs: dict[int, tuple[range, tuple[float, float, float]]]) -> np.ndarray:
    """Label volume: object id -> (frames present, (x, y, r)) with x moving +1 px/frame."""
    out = np.zeros((n, H, W), np.int64)
    for oid, (frames, (x, y, r)) in objs.items():
        for t in frames:
            out[t][disc(x + t, y, r)] = oid
    return out


def test_overlap_zero_links_last_frame_to_first() -> None:
    sched = ClipSchedule(length=3, overlap=0)
    vol = _stream(6, {1: (range(6), (3, 6, 3)), 2: (range(3, 6), (20, 14, 3))})
    st = Stitcher(sched)
    out = st.add_clip(0, vol[0:3])
    out += st.add_clip(3, np.where(vol[3:6] > 0, 9 - vol[3:6], 0))  # other local ids in clip 2
    out += st.flush()
    assert [f.index for f in out] == list(range(6))
    a_ids = {int(np.unique(f.labels[vol[f.index] == 1])[0]) for f in out}
    b_ids = {int(np.unique(f.labels[vol[f.index] == 2])[0]) for f in out[3:]}
    assert len(a_ids) == 1 and len(b_ids) == 1 and a_ids != b_ids


@pytest.mark.parametrize("min_iou", [0.1, 0.01])
def test_unshared_or_weak_tracklets_get_new_ids(min_iou: float) -> None:
    """Object 1 leaves at frame 2, before the overlap (frames 4-5); object 3 appears where it was at
    frame 6. Object 2 ends in the overlap, where clip 2's object 4 touches it only slightly."""
    sched = ClipSchedule(length=6, overlap=2)
    clip1 = _stream(6, {1: (range(0, 3), (5, 5, 3)), 2: (range(0, 6), (8, 14, 3))})
    clip2 = _stream(10, {3: (range(6, 10), (-1, 5, 3)), 4: (range(4, 10), (13, 14, 3))})[4:]
    a, b = clip1[4:] == 2, clip2[:2] == 4
    weak = (a & b).sum() / (a | b).sum()
    assert 0.01 < weak < 0.1
    st = Stitcher(sched, min_iou=min_iou)
    out = st.add_clip(0, clip1) + st.add_clip(4, clip2) + st.flush()
    assert [f.index for f in out] == list(range(10))
    ids = [{int(g) for g in np.unique(f.labels) if g} for f in out]
    g1, g2 = (int(np.unique(out[0].labels[clip1[0] == k])[0]) for k in (1, 2))
    assert ids[0] == {g1, g2} and ids[5] == {g2}
    g3, g4 = (int(np.unique(out[7].labels[clip2[3] == k])[0]) for k in (3, 4))
    assert g3 not in (g1, g2)  # no pixels in the overlap: never matched
    assert (g4 == g2) == (min_iou < weak)  # linked only when the overlap IoU reaches min_iou
    assert len({g1, g2, g3, g4}) == (3 if min_iou < weak else 4)


def test_ids_are_never_reused_after_reset() -> None:
    sched = ClipSchedule(length=2, overlap=1)
    vol = _stream(2, {1: (range(2), (5, 5, 3)), 2: (range(2), (20, 12, 3))})
    st = Stitcher(sched)
    seen = []
    for _ in range(3):
        out = st.add_clip(0, vol) + st.flush()
        seen.append({int(g) for f in out for g in np.unique(f.labels) if g})
        st.reset()
    assert all(len(s) == 2 for s in seen) and len(set().union(*seen)) == 6


def test_a_gap_restarts_the_clips_and_keeps_the_ids_of_objects_seen_on_both_sides() -> None:
    """Frames 4 and 5 are missing: the clips before the gap end there (tail clip, flush), restart() numbers
    frames from 0 again, and the first clip after it is linked to the last frame before it (object 1 moved
    2 px more than usual); object 2 left during the gap, object 3 came in it: new ids. reset() links nothing."""
    sched = ClipSchedule(length=3, overlap=1)
    vol = _stream(10, {1: (range(10), (3, 6, 3)), 2: (range(4), (22, 14, 3)), 3: (range(6, 10), (10, 15, 3))})
    st = Stitcher(sched)
    before = st.add_clip(0, vol[0:3]) + st.add_clip(2, vol[2:4], final=True) + st.flush()
    st.restart()
    after = st.add_clip(0, np.where(vol[6:9] > 0, 9 - vol[6:9], 0)) + st.add_clip(2, vol[8:10] * 5, final=True)
    after += st.flush()
    assert [f.index for f in before] == [0, 1, 2, 3] and [f.index for f in after] == [0, 1, 2, 3]
    before_ids = {k: int(np.unique(before[3].labels[vol[3] == k])[0]) for k in (1, 2)}
    after_ids = {k: {int(np.unique(f.labels[vol[6 + f.index] == k])[0]) for f in after} for k in (1, 3)}
    assert after_ids[1] == {before_ids[1]}  # the same object, the same id across the gap
    assert len(after_ids[3]) == 1 and after_ids[3].isdisjoint(before_ids.values())
    st.reset()
    fresh = st.add_clip(0, vol[6:9]) + st.flush()
    assert int(np.unique(fresh[0].labels[vol[6] == 1])[0]) != before_ids[1]  # a new stream: no link
    st.restart()
    with pytest.raises(ValueError, match="before the gap"):
        st.add_clip(0, vol[6:9, :10])
    held = Stitcher(sched)
    held.add_clip(0, vol[0:3])  # frames 1 and 2 wait for frame 3
    with pytest.raises(RuntimeError, match="2 frame.s. still held"):
        held.restart()


def test_torch_tubes_are_accepted() -> None:
    torch = pytest.importorskip("torch")
    vol = _stream(3, {5: (range(3), (5, 5, 3))})
    st = Stitcher(ClipSchedule(length=3, overlap=1))
    out = st.add_clip(0, torch.from_numpy(vol), {5: 0.7}) + st.flush()
    assert [f.index for f in out] == [0, 1, 2] and all(f.scores == {1: pytest.approx(0.7)} for f in out)


@pytest.mark.parametrize("kwargs,exc,field", [
    ({"length": 1, "overlap": 0}, ValueError, "length"), ({"length": 65, "overlap": 0}, ValueError, "length"),
    ({"length": 6, "overlap": 6}, ValueError, "overlap"), ({"length": 6, "overlap": -1}, ValueError, "overlap"),
    ({"length": 6.0, "overlap": 2}, TypeError, "length"),
])
def test_bad_schedule_names_the_field(kwargs: dict, exc: type, field: str) -> None:
    with pytest.raises(exc, match=f"ClipSchedule.{field}"):
        ClipSchedule(**kwargs)


def test_bad_clips_are_errors() -> None:
    sched = ClipSchedule(length=4, overlap=1)
    vol = _stream(8, {1: (range(8), (3, 6, 3))})
    with pytest.raises(ValueError, match="min_iou"):
        Stitcher(sched, min_iou=0.0)
    st = Stitcher(sched)
    with pytest.raises(ValueError, match="3 frames; ClipSchedule.length is 4"):
        st.add_clip(0, vol[:3])
    with pytest.raises(ValueError, match="first clip .* frame 0"):
        st.add_clip(3, vol[3:7])
    with pytest.raises(ValueError, match="integer"):
        st.add_clip(0, vol[:4].astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        st.add_clip(0, vol[0])
    with pytest.raises(ValueError, match="ids must be in"):
        st.add_clip(0, -vol[:4])
    with pytest.raises(ValueError, match=r"no entry for tube id\(s\) \[1\]"):
        st.add_clip(0, vol[:4], {2: 0.5})
    st.add_clip(0, vol[:4])
    with pytest.raises(ValueError, match="next clip starts at 3"):
        st.add_clip(2, vol[2:6])
    with pytest.raises(ValueError, match="frames are"):
        st.add_clip(3, vol[3:7, :10])
    with pytest.raises(RuntimeError, match="frame 4 is due at frames_seen 8"):
        st.advance(8)  # the clip completing at 7 was never added, and frame 4 is due at 8
    st.flush()
    with pytest.raises(ValueError, match="reset"):
        st.add_clip(3, vol[3:7])


def test_probabilities_travel_with_their_tubes_under_the_global_ids() -> None:
    """A tube's probability map is handed on under the global id its labels get, also when the next clip
    numbers its tubes the other way round."""
    sched = ClipSchedule(length=6, overlap=2)
    st = Stitcher(sched)
    rng = np.random.default_rng(5)
    published = []
    for start in (0, 4):
        tubes, scores, local = clip_tubes(start, 6, rng)
        # each tube's map: 0.9 on its own pixels, 0.3 one pixel around them (below the threshold)
        probabilities = {}
        for obj, lid in local.items():
            own = (tubes == lid).astype(np.float32)
            ring = np.maximum(np.maximum(own, np.roll(own, 1, axis=2)), np.roll(own, -1, axis=2)) - own
            if own.any():
                probabilities[lid] = 0.9 * own + 0.3 * ring
        for n in range(start + 1, start + 6 + 1):
            if sched.clip_ready(n):
                published += st.add_clip(start, tubes, scores, probabilities=probabilities)
                break
            published += st.advance(n)
    published += st.flush()
    assert [f.index for f in published] == list(range(10))
    for f in published:
        present = {int(g) for g in np.unique(f.labels) if g}
        assert set(f.probabilities) == present
        for gid, p in f.probabilities.items():
            assert p.shape == (H, W) and p.dtype == np.float32
            np.testing.assert_array_equal(p > 0.5, f.labels == gid)


def test_probabilities_must_cover_every_tube_with_the_clips_shape() -> None:
    st = Stitcher(ClipSchedule(length=2, overlap=0))
    tubes = np.zeros((2, H, W), np.int64)
    tubes[:, 2:5, 2:5] = 1
    tubes[:, 8:12, 8:12] = 2
    with pytest.raises(ValueError, match="no entry for tube id 2"):
        st.add_clip(0, tubes, probabilities={1: np.ones((2, H, W))})
    with pytest.raises(ValueError, match="tube id 1 are"):
        st.add_clip(0, tubes, probabilities={1: np.ones((2, H, W + 1)), 2: np.ones((2, H, W))})
