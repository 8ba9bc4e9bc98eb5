"""YouTube-VOS reader on a hand-made split: sparse palette annotations, meta.json categories, split detection."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from movseg_ros.datasets import DatasetError, open_dataset
from movseg_ros.datasets.label_files import davis_palette
from movseg_ros.datasets.ytvos import find_sequences

H, W = 16, 24
FRAMES = ("00000", "00005", "00010", "00015")
ANNOTATED = ("00000", "00010")


def ids_at(k: int) -> np.ndarray:
    ids = np.zeros((H, W), np.uint8)
    ids[2:6, 2 + k : 7 + k] = 1
    ids[9:14, 14:20] = 2
    return ids


def make_split(root: Path, split: str = "train", video: str = "0a7b0cd5e3") -> Path:
    split_dir = root / split
    (split_dir / "JPEGImages" / video).mkdir(parents=True)
    (split_dir / "Annotations" / video).mkdir(parents=True)
    for k, name in enumerate(FRAMES):
        assert cv2.imwrite(str(split_dir / "JPEGImages" / video / f"{name}.jpg"), np.full((H, W, 3), 30 * k, np.uint8))
        if name in ANNOTATED:
            image = Image.fromarray(ids_at(k))
            image.putpalette(davis_palette().tobytes())
            image.save(split_dir / "Annotations" / video / f"{name}.png")
    meta = {"videos": {video: {"objects": {"1": {"category": "person", "frames": list(ANNOTATED)},
                                           "2": {"category": "dog", "frames": list(ANNOTATED)}}}}}
    (split_dir / "meta.json").write_text(json.dumps(meta))
    return split_dir


def test_sparse_palette_annotations_and_categories(tmp_path: Path) -> None:
    (seq,) = open_dataset(make_split(tmp_path))
    assert (seq.name, seq.dataset, len(seq), seq.size) == ("0a7b0cd5e3", "ytvos", 4, (H, W))
    assert seq.frame_names == FRAMES and seq.annotated == (0, 2)
    assert seq.fps == pytest.approx(6.0)  # every 5th frame of 30 fps video
    assert dict(seq.categories) == {1: "person", 2: "dog"}
    np.testing.assert_array_equal(seq.labels(0), ids_at(0).astype(np.int32))
    np.testing.assert_array_equal(seq.labels(2), ids_at(2).astype(np.int32))
    assert seq.ignore(2) is None
    with pytest.raises(DatasetError, match=r"frame 00005 \(index 1\) of 0a7b0cd5e3 is not annotated"):
        seq.labels(1)


def test_root_with_one_split_or_several(tmp_path: Path) -> None:
    make_split(tmp_path)
    assert [s.name for s in open_dataset(tmp_path)] == ["0a7b0cd5e3"]
    make_split(tmp_path, "valid", "ffd7c15f47")
    with pytest.raises(DatasetError, match=r"several YouTube-VOS splits \['train', 'valid'\]"):
        find_sequences(tmp_path)
    assert [s.name for s in find_sequences(tmp_path, split="valid")] == ["ffd7c15f47"]


def test_bad_ytvos_input_names_the_file(tmp_path: Path) -> None:
    split_dir = make_split(tmp_path)
    video = split_dir / "JPEGImages" / "0a7b0cd5e3"
    (video / "00010.jpg").rename(tmp_path / "moved.jpg")
    with pytest.raises(DatasetError, match=r"00010\.jpg: frame missing: 00005\.jpg is followed by 00015\.jpg, but frames are numbered every 5"):
        find_sequences(split_dir)
    (tmp_path / "moved.jpg").rename(video / "00010.jpg")
    stray = split_dir / "Annotations" / "0a7b0cd5e3" / "00020.png"
    Image.fromarray(np.zeros((H, W), np.uint8)).save(stray)
    with pytest.raises(DatasetError, match=r"00020\.png: annotation has no frame 00020"):
        find_sequences(split_dir)
    stray.unlink()
    (split_dir / "meta.json").write_text('{"videos": [1, 2]}')
    with pytest.raises(DatasetError, match=r"meta\.json: not a YouTube-VOS meta\.json"):
        find_sequences(split_dir)
