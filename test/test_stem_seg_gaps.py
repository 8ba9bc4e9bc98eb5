"""stem_seg across gaps in a stream (frames missing, seen from the stamps or told by Frame.gap_before): clips end at
the gap and never join frames from both sides, every frame comes out once, and an object seen on both sides keeps
its id. A stand-in network (it reads each frame's number from the background and gives the bright square as the
one object) makes the tubes exact, so what is tested is the clip schedule and the stitching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from movseg_ros.frame import Frame
from movseg_ros.output import FrameOutput
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.segmenters.geometric import GeometricConfig

T, TC = 4, 1
W, H = 128, 96
PERIOD = 33_333_333
SIDE = 24  # the square's side, px


class SquareNetwork:
    """Stands in for the network: the bright square is one instance (heat 1, embedding 0), the rest background
    (heat 0, embedding 5); records the frame numbers of every clip it is given."""

    def __init__(self) -> None:
        self.clips: list[list[int]] = []

    def __call__(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        self.clips.append([round((float(v) * 255 - 20) / 2) for v in clip[0, :, 0, 0, 0]])
        square = (clip[0, :, 0, ::4, ::4] > 0.9).float()  # (T, h/4, w/4), the network's stride 4
        embeddings = torch.stack([5.0 * (1 - square)] * 2)[None]
        return embeddings, torch.full_like(embeddings, 0.1), square[None]


def image(number: int) -> np.ndarray:
    """Frame `number` of the camera: its number in the background level, a white square moving 2 px a frame."""
    img = np.full((H, W, 3), 20 + 2 * number, np.uint8)
    x = 20 + 2 * number
    img[30:30 + SIDE, x:x + SIDE] = 255
    return img


def stem_seg(weights, **changes) -> tuple[Pipeline, SquareNetwork]:
    config = PipelineConfig.from_dict({"pipeline": "stem_seg", **changes, "stem_seg": {
        "weights": str(weights), "accelerator": "eager", "clip_length": T, "clip_overlap": TC, "work_width": 96}})
    pipe = Pipeline(config)
    network = pipe.segmenter.network = SquareNetwork()
    return pipe, network


def square_ids(outputs: list[FrameOutput]) -> set[int]:
    """The ids the square had in these outputs (one visible track each)."""
    ids = set()
    for out in outputs:
        visible = out.visible
        assert len(visible) == 1, f"frame {out.frame.index}: {len(visible)} visible tracks"
        ids.add(visible[0].id)
    return ids


@pytest.mark.parametrize("told", [False, True], ids=["by stamps", "by gap_before"])
def test_clips_end_at_a_gap_and_the_square_keeps_its_id(tiny_stemseg, told: bool) -> None:
    """Frames 9, 10 and 17 of 24 never arrive. By stamps: theirs are missing; told: the stamps stay regular
    (gap_factor 0 ignores them anyway) and the next frame says how many went missing."""
    pipe, network = stem_seg(tiny_stemseg, gap_factor=0.0 if told else 1.8)
    missing = {9, 10, 17}
    numbers = [n for n in range(24) if n not in missing]
    outputs, gaps, out_by = [], {}, {}
    for i, n in enumerate(numbers):
        before = n - 1 - max((m for m in numbers if m < n), default=n - 1)
        stamp = (i + 1 if told else n + 1) * PERIOD
        got = pipe.process(Frame(image(n), stamp, "cam", n, gap_before=before if told else 0))
        if pipe.last_gap is not None:
            gaps[n] = pipe.last_gap.missing
        out_by[n] = [o.frame.index for o in got]
        outputs += got
    outputs += pipe.finish()
    assert gaps == {11: 2, 18: 1}
    assert [o.frame.index for o in outputs] == numbers  # every frame once, in order
    assert [o.frame.stamp_ns for o in outputs] == [(i + 1 if told else n + 1) * PERIOD for i, n in enumerate(numbers)]
    segments = [range(0, 9), range(11, 17), range(18, 24)]
    for clip in network.clips:
        assert clip == list(range(clip[0], clip[0] + len(clip))), f"clip {clip} joins frames across a gap"
        assert sum(clip[0] in s for s in segments) == 1 and any(set(clip) <= set(s) for s in segments), clip
    assert max(out_by[11]) == 8 and max(out_by[18]) == 16  # the frames before a gap come out when it is seen
    assert len(square_ids(outputs)) == 1, "the square changed id across a gap"


def test_a_pause_hands_over_the_held_frames_and_the_stream_goes_on_with_the_same_ids(tiny_stemseg) -> None:
    pipe, network = stem_seg(tiny_stemseg)
    first = [o for n in range(6) for o in pipe.process(Frame(image(n), (n + 1) * PERIOD, "cam", n))]
    held = pipe.finish()  # the node's flush after silence
    assert [o.frame.index for o in first + held] == list(range(6)) and pipe.finish() == []
    later = [o for n in range(6, 12) for o in pipe.process(Frame(image(n), (n + 1) * PERIOD, "cam", n))]
    later += pipe.finish()
    assert [o.frame.index for o in later] == list(range(6, 12))
    assert all(max(c) < 6 or min(c) >= 6 for c in network.clips), network.clips
    assert len(square_ids(first + held + later)) == 1
    pipe.reset()  # a new stream, not a pause: nothing links to what came before
    again = [o for n in range(4) for o in pipe.process(Frame(image(n), (n + 1) * PERIOD, "cam", n))] + pipe.finish()
    assert square_ids(again).isdisjoint(square_ids(later))


def test_an_online_pipeline_counts_gaps_and_answers_as_without_them() -> None:
    """geometric's flow spans a gap: every frame is answered at once, exactly as when nobody says frames are missing."""
    numbers = [n for n in range(10) if n not in (5, 6)]
    runs = []
    for told in (False, True):
        pipe = Pipeline(PipelineConfig(geometric=GeometricConfig(appearance="none"), gap_factor=0.0))
        gaps, maps = [], []
        for i, n in enumerate(numbers):
            frame = Frame(image(n), (i + 1) * PERIOD, "cam", n, gap_before=2 if told and n == 7 else 0)
            out = pipe.process(frame)
            assert [o.frame.index for o in out] == [n]
            gaps.append(pipe.last_gap is not None)
            maps.append(out[0].label_map)
        runs.append(maps)
        assert sum(gaps) == int(told)
    assert all(np.array_equal(a, b) for a, b in zip(*runs))
