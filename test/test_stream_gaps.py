"""Gaps in a stream: frames the source says are missing, or stamp steps well over the camera's period."""

from __future__ import annotations

import numpy as np
import pytest

from movseg_ros.frame import Frame
from movseg_ros.stream_gaps import GapDetector

PERIOD = 33_333_333
IMAGE = np.zeros((4, 4, 3), np.uint8)


def frame(stamp_ns: int, index: int = 0, gap_before: int = 0) -> Frame:
    return Frame(IMAGE, stamp_ns, "cam", index, gap_before=gap_before)


def gaps_of(stamps: list[int], detector: GapDetector | None = None, gap_before: dict[int, int] | None = None
            ) -> dict[int, tuple[int, str]]:
    """{frame number: (missing, source)} for the frames a detector finds a gap before."""
    detector = detector or GapDetector()
    found = {}
    for i, stamp in enumerate(stamps):
        gap = detector.check(frame(stamp, i, (gap_before or {}).get(i, 0)))
        if gap is not None:
            found[i] = (gap.missing, gap.source)
    return found


def test_a_steady_camera_with_jitter_has_no_gap() -> None:
    rng = np.random.default_rng(0)
    stamps = np.cumsum(PERIOD * (1 + rng.uniform(-0.3, 0.3, 60))).astype(int).tolist()
    assert gaps_of(stamps) == {}


def test_skipped_stamps_are_gaps_of_as_many_frames() -> None:
    kept = [i for i in range(30) if i not in (10, 20, 21, 22)]
    found = gaps_of([i * PERIOD for i in kept])
    assert found == {kept.index(11): (1, "stamps"), kept.index(23): (3, "stamps")}


def test_the_first_steps_cannot_show_a_gap_but_the_source_can() -> None:
    stamps = [0, 3 * PERIOD, 4 * PERIOD, 5 * PERIOD, 6 * PERIOD, 9 * PERIOD]
    assert gaps_of(stamps) == {5: (2, "stamps")}  # the first step is the period's only witness yet
    assert gaps_of(stamps, gap_before={0: 4, 1: 2}) == {1: (2, "input"), 5: (2, "stamps")}  # frame 0: nothing before


def test_the_source_count_wins_when_it_says_more() -> None:
    stamps = [i * PERIOD for i in (0, 1, 2, 3, 4, 6, 7)]
    assert gaps_of(stamps, gap_before={5: 3}) == {5: (3, "input")}
    assert gaps_of(stamps, gap_before={6: 1}) == {5: (1, "stamps"), 6: (1, "input")}


def test_a_slower_camera_is_learnt_after_a_few_gaps() -> None:
    stamps = [i * PERIOD for i in range(20)] + [(19 + 2 * i) * PERIOD for i in range(1, 30)]  # 30 Hz, then 15 Hz
    found = gaps_of(stamps)
    assert found and max(found) < 20 + 10  # the median period moves to the new rate within HISTORY / 2 steps
    assert all(v == (1, "stamps") for v in found.values())


def test_reset_forgets_the_stream_and_factor_zero_trusts_only_the_source() -> None:
    detector = GapDetector()
    gaps_of([i * PERIOD for i in range(10)], detector)
    detector.reset()
    assert detector.check(frame(10**12, gap_before=5)) is None  # the first frame of a new stream
    off = GapDetector(0.0)
    assert gaps_of([i * PERIOD for i in (0, 1, 2, 3, 10, 11)], off, gap_before={5: 1}) == {5: (1, "input")}


@pytest.mark.parametrize("factor", [1.0, -1.0, 101.0])
def test_a_bad_factor_names_gap_factor(factor: float) -> None:
    with pytest.raises(ValueError, match="gap_factor"):
        GapDetector(factor)


def test_frame_gap_before_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="Frame.gap_before"):
        frame(0, gap_before=-1)
