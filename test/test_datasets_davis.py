"""DAVIS 2016 / 2017 readers on hand-made sequences (flat and official layouts) and on the real dev set."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from movseg_ros.datasets import DatasetError, open_dataset
from movseg_ros.datasets.davis import default_root, find_sequences, read_sequence
from movseg_ros.datasets.errors import BadImageFile
from movseg_ros.datasets.label_files import davis_palette

H, W = 24, 32


def frame_image(i: int) -> np.ndarray:
    """A distinct RGB frame per index (exact after a PNG round trip)."""
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


def ids_map(i: int) -> np.ndarray:
    """Object 1 moves right, object 2 sits still, a void (255) border around object 2."""
    ids = np.zeros((H, W), np.uint8)
    ids[4:10, 2 + i : 8 + i] = 1
    ids[14:20, 20:28] = 2
    ids[13, 19:29] = 255
    return ids


def save_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def save_palette(path: Path, ids: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(ids)
    image.putpalette(davis_palette().tobytes())
    image.save(path)


def save_grey(path: Path, mask: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), mask.astype(np.uint8) * 255)


def make_flat(root: Path, name: str, frames: int = 4, palette: bool = False) -> Path:
    folder = root / name
    for i in range(frames):
        save_rgb(folder / "JPEGImages" / f"{i:05d}.png", frame_image(i))
        if palette:
            save_palette(folder / "Annotations" / f"{i:05d}.png", ids_map(i))
        else:
            save_grey(folder / "Annotations" / f"{i:05d}.png", ids_map(i) == 1)
    return folder


def test_davis2016_grey_masks_read_as_label_one(tmp_path: Path) -> None:
    seq = read_sequence(make_flat(tmp_path, "bear"))
    assert (seq.name, seq.dataset, len(seq), seq.size, seq.fps) == ("bear", "davis2016", 4, (H, W), 24.0)
    assert seq.frame_names == ("00000", "00001", "00002", "00003") and seq.annotated == (0, 1, 2, 3)
    for i in range(4):
        np.testing.assert_array_equal(seq.image(i), frame_image(i))
        labels = seq.labels(i)
        assert labels.dtype == np.int32
        np.testing.assert_array_equal(labels, (ids_map(i) == 1).astype(np.int32))
        np.testing.assert_array_equal(seq.binary(i), ids_map(i) == 1)
        assert seq.ignore(i) is None


def test_davis2017_palette_indices_not_colours_and_void_as_ignore(tmp_path: Path) -> None:
    folder = make_flat(tmp_path, "dogs", palette=True)
    png = folder / "Annotations" / "00000.png"
    assert Image.open(png).mode == "P"
    assert cv2.imread(str(png), cv2.IMREAD_UNCHANGED).ndim == 3  # why the reader uses Pillow: OpenCV gives colours
    seq = read_sequence(folder)
    assert seq.dataset == "davis2017"
    for i in range(4):
        expected = ids_map(i).astype(np.int32)
        expected[expected == 255] = 0
        np.testing.assert_array_equal(seq.labels(i), expected)
        np.testing.assert_array_equal(seq.ignore(i), ids_map(i) == 255)
        np.testing.assert_array_equal(seq.binary(i), expected > 0)


def test_rgb_copy_of_a_palette_annotation_maps_back_to_ids(tmp_path: Path) -> None:
    folder = make_flat(tmp_path, "dogs", frames=2, palette=True)
    png = folder / "Annotations" / "00001.png"
    Image.open(png).convert("RGB").save(png)
    seq = read_sequence(folder)
    np.testing.assert_array_equal(seq.labels(1), np.where(ids_map(1) == 255, 0, ids_map(1)))
    colours = np.asarray(Image.open(png)).copy()
    colours[0, 0] = (1, 2, 3)
    Image.fromarray(colours).save(png)
    with pytest.raises(DatasetError, match=r"00001\.png.*\(1, 2, 3\) is not in the DAVIS palette"):
        seq.labels(1)


def test_davis_palette_is_the_davis_2017_one() -> None:
    palette = davis_palette()
    assert palette.shape == (256, 3)
    assert [tuple(palette[i]) for i in (0, 1, 2, 3, 4, 8)] == [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (64, 0, 0)]
    assert tuple(palette[255]) == (224, 224, 192)


def make_official(root: Path) -> None:
    for name, palette in (("bike", True), ("cows", False)):
        for i in range(3):
            save_rgb(root / "JPEGImages" / "480p" / name / f"{i:05d}.jpg", frame_image(i))
            ann = root / "Annotations" / "480p" / name / f"{i:05d}.png"
            save_palette(ann, ids_map(i)) if palette else save_grey(ann, ids_map(i) == 1)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("cows\n")
    (root / "ImageSets" / "480p").mkdir(parents=True)
    (root / "ImageSets" / "480p" / "train.txt").write_text(
        "".join(f"/JPEGImages/480p/bike/{i:05d}.jpg /Annotations/480p/bike/{i:05d}.png\n" for i in range(3))
    )


def test_official_layout_with_split_files(tmp_path: Path) -> None:
    make_official(tmp_path)
    both = find_sequences(tmp_path)
    assert [(s.name, s.dataset, len(s)) for s in both] == [("bike", "davis2017", 3), ("cows", "davis2016", 3)]
    assert [s.name for s in find_sequences(tmp_path, split="val")] == ["cows"]
    assert [s.name for s in find_sequences(tmp_path, split="train", year="480p")] == ["bike"]
    assert [s.name for s in open_dataset(tmp_path)] == ["bike", "cows"]
    np.testing.assert_array_equal(both[0].labels(2), np.where(ids_map(2) == 255, 0, ids_map(2)))
    with pytest.raises(DatasetError, match="no split file for 'test'"):
        find_sequences(tmp_path, split="test")
    with pytest.raises(DatasetError, match="Full-Resolution.*no such resolution folder"):
        find_sequences(tmp_path, resolution="Full-Resolution")


def test_first_frame_only_truth_is_annotated_zero(tmp_path: Path) -> None:
    folder = make_flat(tmp_path, "semi", frames=3, palette=True)
    for i in (1, 2):
        (folder / "Annotations" / f"{i:05d}.png").unlink()
    seq = read_sequence(folder)
    assert seq.annotated == (0,)
    with pytest.raises(DatasetError, match=r"frame 00001 \(index 1\) of semi is not annotated"):
        seq.labels(1)


def test_bad_sequences_name_the_file_and_problem(tmp_path: Path) -> None:
    folder = make_flat(tmp_path, "gap", frames=5)
    (folder / "JPEGImages" / "00002.png").unlink()
    (folder / "Annotations" / "00002.png").unlink()
    with pytest.raises(DatasetError, match=r"JPEGImages/00002\.png: frame missing: 00001\.png is followed by 00003\.png"):
        read_sequence(folder)

    folder = make_flat(tmp_path, "holes", frames=5)
    (folder / "Annotations" / "00003.png").unlink()
    with pytest.raises(DatasetError, match=r"Annotations/00003\.png: annotation missing for frame 00003\.png: 4 of 5"):
        read_sequence(folder)

    folder = make_flat(tmp_path, "stray", frames=2)
    save_grey(folder / "Annotations" / "00007.png", np.zeros((H, W), bool))
    with pytest.raises(DatasetError, match=r"00007\.png: annotation has no frame 00007"):
        read_sequence(folder)

    folder = make_flat(tmp_path, "cut", frames=2)
    png = folder / "Annotations" / "00001.png"
    png.write_bytes(png.read_bytes()[:60])
    seq = read_sequence(folder)  # lazy: the file is decoded when asked for
    with pytest.raises(BadImageFile, match=r"00001\.png: truncated PNG: chunk IDAT at byte 33 needs"):
        seq.labels(1)

    folder = make_flat(tmp_path, "small", frames=2)
    save_grey(folder / "Annotations" / "00001.png", np.zeros((H // 2, W), bool))
    with pytest.raises(DatasetError, match=r"frame 00001: annotation is 32x12 but the frames are 32x24"):
        read_sequence(folder).labels(1)

    (tmp_path / "empty" / "JPEGImages").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no frames"):
        read_sequence(tmp_path / "empty")
    with pytest.raises(DatasetError, match=r"no sequence\(s\) \['zebra'\]"):
        find_sequences(tmp_path, ["zebra"])
    with pytest.raises(DatasetError, match="DAVIS folder not found"):
        find_sequences(tmp_path / "nowhere")


DEV_FRAMES = {"bmx-trees": 80, "car-shadow": 40, "dog": 60, "horsejump-high": 50, "motocross-jump": 40, "soapbox": 99}


def test_real_dev_set() -> None:
    root = default_root()
    if not (root / "dog").is_dir():
        pytest.skip(f"DAVIS dev set not found at {root} (set MOVSEG_DAVIS or add ../shared/data/davis2016)")
    sequences = open_dataset(root)
    assert {s.name: len(s) for s in sequences} == DEV_FRAMES
    for seq in sequences:
        assert seq.dataset == "davis2016" and seq.size == (480, 854) and seq.annotated == tuple(range(len(seq)))
        last = len(seq) - 1
        grey = cv2.imread(str(root / seq.name / "Annotations" / f"{last:05d}.png"), cv2.IMREAD_GRAYSCALE)
        np.testing.assert_array_equal(seq.binary(last), grey > 0)
        assert set(np.unique(seq.labels(last)).tolist()) == {0, 1}
    assert sequences[0].image(0).shape == (480, 854, 3)
