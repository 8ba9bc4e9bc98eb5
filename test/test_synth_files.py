"""Synthetic clips on disk: the DAVIS layout with palette annotations, .flo flow files, meta.json."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from movseg_ros.datasets.davis import read_sequence
from movseg_ros.synth import generate_clip, preset
from movseg_ros.synth.flo import FlowFileError, read_flo, write_flo
from movseg_ros.datasets.errors import DatasetError
from movseg_ros.datasets.label_files import davis_palette, read_palette_indices, write_palette_png
from movseg_ros.synth.writers import write_davis_layout


def small_clip(seed: int = 1):
    return generate_clip(preset("stemseg").replace(width=192, height=144, frames=5, n_moving=(2, 3),
                                                   n_static=(1, 2)), seed)


def test_flo_round_trip_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    flow = (rng.standard_normal((7, 11, 2)) * 30).astype(np.float32)
    path = write_flo(tmp_path / "a.flo", flow)
    data = path.read_bytes()
    assert data[:4] == b"PIEH" and len(data) == 12 + 7 * 11 * 8
    assert np.array_equal(read_flo(path), flow)


@pytest.mark.parametrize("damage, message", [
    (lambda d: d[:-5], "truncated"),
    (lambda d: b"XXXX" + d[4:], "not a .flo file"),
    (lambda d: d[:6], "too short"),
    (lambda d: d[:4] + np.array([-3, 7], "<i4").tobytes() + d[12:], "bad size"),
])
def test_damaged_flo_files_are_named_in_the_error(tmp_path: Path, damage, message: str) -> None:
    good = write_flo(tmp_path / "good.flo", np.zeros((7, 11, 2), np.float32)).read_bytes()
    bad = tmp_path / "bad.flo"
    bad.write_bytes(damage(good))
    with pytest.raises(FlowFileError, match=message) as e:
        read_flo(bad)
    assert str(bad) in str(e.value)


def test_missing_flo_and_wrong_shape_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FlowFileError, match="cannot read"):
        read_flo(tmp_path / "none.flo")
    with pytest.raises(FlowFileError, match="HxWx2"):
        write_flo(tmp_path / "x.flo", np.zeros((4, 4, 3), np.float32))


def test_palette_png_round_trip_and_davis_colours(tmp_path: Path) -> None:
    ids = np.random.default_rng(1).integers(0, 256, (40, 60)).astype(np.uint8)
    path = write_palette_png(tmp_path / "a.png", ids)
    assert np.array_equal(read_palette_indices(path), ids)
    assert tuple(davis_palette()[1]) == (128, 0, 0) and tuple(davis_palette()[2]) == (0, 128, 0)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)  # an ordinary PNG to other readers
    assert np.array_equal(bgr[..., ::-1], davis_palette()[ids])


def test_bad_annotation_files_are_named_in_the_error(tmp_path: Path) -> None:
    good = write_palette_png(tmp_path / "good.png", np.ones((30, 30), np.uint8)).read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(good[:60])
    with pytest.raises(DatasetError, match="truncated") as e:
        read_palette_indices(cut)
    assert str(cut) in str(e.value)
    text = tmp_path / "text.png"
    text.write_text("hello")
    with pytest.raises(DatasetError, match="cannot decode"):
        read_palette_indices(text)
    with pytest.raises(ValueError, match="uint8"):
        write_palette_png(tmp_path / "big.png", np.full((3, 3), 300))


def test_davis_layout_holds_the_clip(tmp_path: Path) -> None:
    clip = small_clip()
    seq = write_davis_layout(clip, tmp_path, "clip-a", image_format="png")
    frames = clip.images.shape[0]
    assert sorted(p.name for p in (seq / "JPEGImages").iterdir()) == [f"{t:05d}.png" for t in range(frames)]
    assert len(list((seq / "Flow").glob("*.flo"))) == frames - 1
    davis = read_sequence(seq)  # the project's own DAVIS reader takes it
    assert len(davis) == frames and len(davis.annotated) == frames
    for t in range(frames):
        assert np.array_equal(davis.image(t), clip.images[t])  # png: lossless
        ids = read_palette_indices(seq / "Annotations" / f"{t:05d}.png")
        assert np.array_equal(ids, clip.instances[t])
        assert np.array_equal(davis.labels(t), clip.instances[t])  # read as DAVIS 2017 instance truth
        moving = cv2.imread(str(seq / "AnnotationsMoving" / f"{t:05d}.png"), cv2.IMREAD_UNCHANGED)
        assert set(np.unique(moving)) <= {0, 255}
        assert np.array_equal(moving > 0, np.isin(clip.instances[t], clip.moving_ids(t)))
        if t < frames - 1:
            assert np.array_equal(read_flo(seq / "Flow" / f"{t:05d}.flo"), clip.flow[t])
    meta = json.loads((seq / "meta.json").read_text())
    assert meta["seed"] == clip.seed and meta["ids"] == clip.ids
    assert meta["static_ids"] == list(clip.static_ids)
    assert meta["moving"] == {str(i): clip.moving[:, i].tolist() for i in clip.ids}
    assert meta["depth_order"][0] == clip.depth_order(0)
    assert meta["config"]["width"] == 192


def test_davis_layout_jpeg_frames_and_bad_format(tmp_path: Path) -> None:
    clip = small_clip(2)
    seq = write_davis_layout(clip, tmp_path, "clip-b")
    image = cv2.cvtColor(cv2.imread(str(seq / "JPEGImages" / "00000.jpg")), cv2.COLOR_BGR2RGB)
    assert np.abs(image.astype(float) - clip.images[0]).mean() < 4.0
    with pytest.raises(ValueError, match="gif"):
        write_davis_layout(clip, tmp_path, "clip-c", image_format="gif")


def test_moved_annotations_keep_an_object_after_it_stops_and_leave_static_ones_out(tmp_path: Path) -> None:
    clip = next(c for c in (generate_clip(preset("stemseg").replace(width=192, height=144, frames=12), s)
                            for s in range(40))
                if any(e == "stop" and f is not None and 0 < f < 10 for e, f in
                       zip(c.events.values(), c.event_frames.values())) and c.static_ids)
    seq = write_davis_layout(clip, tmp_path, "clip-moved", image_format="png", annotations="moved")
    stopper = next(i for i, e in clip.events.items() if e == "stop")
    last = clip.images.shape[0] - 1
    assert not clip.moving[last, stopper]  # it has stopped by the last frame ...
    masks = [cv2.imread(str(seq / "Annotations" / f"{t:05d}.png"), cv2.IMREAD_UNCHANGED) for t in range(last + 1)]
    assert all(set(np.unique(m)) <= {0, 255} for m in masks)
    assert (masks[last][clip.instances[last] == stopper] == 255).all()  # ... and is still in the truth
    for i in clip.static_ids:
        assert all((m[clip.instances[t] == i] == 0).all() for t, m in enumerate(masks))
    for t, m in enumerate(masks):
        moved = [i for i in clip.ids if clip.moving[:t + 1, i].any()]
        assert np.array_equal(m > 0, np.isin(clip.instances[t], moved))
    with pytest.raises(ValueError, match="annotations 'ids'"):
        write_davis_layout(clip, tmp_path, "clip-bad", annotations="ids")
