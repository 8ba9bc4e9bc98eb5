"""DAVIS prediction PNGs (binary and palette) round trips, and lining predictions up with the truth."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from movseg_ros.datasets import DatasetError
from movseg_ros.datasets.davis import read_sequence
from movseg_ros.datasets.errors import BadImageFile
from movseg_ros.datasets.label_files import davis_palette
from movseg_ros.datasets.predictions import check_alignment, read_prediction_folder, write_davis_predictions
from movseg_ros.writers import write_label_png

H, W = 20, 28
N = 4


def truth_sequence(root: Path, name: str = "bear", frames: int = N, first_only: bool = False) -> Path:
    folder = root / name
    (folder / "JPEGImages").mkdir(parents=True)
    (folder / "Annotations").mkdir()
    for i in range(frames):
        assert cv2.imwrite(str(folder / "JPEGImages" / f"{i:05d}.png"), np.zeros((H, W, 3), np.uint8))
        if i == 0 or not first_only:
            mask = np.zeros((H, W), np.uint8)
            mask[3:9, 3 + i : 9 + i] = 255
            assert cv2.imwrite(str(folder / "Annotations" / f"{i:05d}.png"), mask)
    return folder


def track_maps() -> list[np.ndarray]:
    """Track 40 from frame 0, track 7 from frame 1, track 300 from frame 2 (too big for a palette as is)."""
    maps = [np.zeros((H, W), np.int32) for _ in range(N)]
    for i, m in enumerate(maps):
        m[2:8, 2 + i : 8 + i] = 40
        if i >= 1:
            m[12:18, 4:8] = 7
        if i >= 2:
            m[12:14, 20:22] = 300
    return maps


def test_binary_predictions_read_as_one_object_by_index_and_as_0_255_by_colour(tmp_path: Path) -> None:
    truth = read_sequence(truth_sequence(tmp_path / "truth"))
    written = write_davis_predictions(tmp_path / "pred", "bear", track_maps(), mode="binary")
    assert [p.name for p in written.paths] == ["00000.png", "00001.png", "00002.png", "00003.png"]
    image = Image.open(written.paths[1])
    assert image.mode == "P" and set(np.unique(np.asarray(image)).tolist()) == {0, 1}
    grey = cv2.imread(str(written.paths[1]), cv2.IMREAD_GRAYSCALE)  # palette applied: DAVIS 2016 style
    assert set(np.unique(grey).tolist()) == {0, 255}
    np.testing.assert_array_equal(grey > 0, track_maps()[1] > 0)
    predictions = read_prediction_folder(tmp_path / "pred", truth)
    assert not predictions.alignment.partial and predictions.alignment.present == (0, 1, 2, 3)
    for i, expected in enumerate(track_maps()):
        np.testing.assert_array_equal(predictions.labels(i), (expected > 0).astype(np.int32))


def test_instance_predictions_are_palette_pngs_renumbered_by_first_appearance(tmp_path: Path) -> None:
    truth = read_sequence(truth_sequence(tmp_path / "truth"))
    written = write_davis_predictions(tmp_path / "pred", "bear", track_maps())
    assert written.ids == {40: 1, 7: 2, 300: 3}
    image = Image.open(written.paths[2])
    assert image.mode == "P"
    assert bytes(image.getpalette()[: 3 * 256]) == davis_palette().tobytes()
    raw = np.asarray(image)  # what the official DAVIS tools read: np.array(Image.open(path))
    remap = np.vectorize({0: 0, 40: 1, 7: 2, 300: 3}.get)
    np.testing.assert_array_equal(raw, remap(track_maps()[2]))
    predictions = read_prediction_folder(tmp_path / "pred", truth)
    assert [sorted(np.unique(m).tolist()) for m in predictions.label_maps()] == [[0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3]]


def test_instance_ids_kept_when_asked_and_largest_objects_when_capped(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"00002\.png: track id 300 does not fit a palette PNG \(1\.\.254\)"):
        write_davis_predictions(tmp_path / "a", "bear", track_maps(), renumber=False)
    small = [np.where(m == 300, 0, m) for m in track_maps()]
    kept = write_davis_predictions(tmp_path / "b", "bear", small, renumber=False)
    assert kept.ids == {40: 40, 7: 7}
    np.testing.assert_array_equal(np.asarray(Image.open(kept.paths[3])), small[3])
    capped = write_davis_predictions(tmp_path / "c", "bear", track_maps(), max_objects=2)
    assert capped.ids == {40: 1, 7: 2}  # track 300 is the smallest by area
    assert np.asarray(Image.open(capped.paths[3]))[12, 20] == 0


def test_frame_names_follow_the_truth(tmp_path: Path) -> None:
    written = write_davis_predictions(tmp_path, "vid", track_maps()[:2], frame_names=["00000", "00005"])
    assert [p.name for p in written.paths] == ["00000.png", "00005.png"]
    with pytest.raises(DatasetError, match="more label maps than the 1 frame names"):
        write_davis_predictions(tmp_path, "vid", track_maps()[:2], frame_names=["00000"])


def test_missing_prediction_is_an_error_or_a_partial_result(tmp_path: Path) -> None:
    truth = read_sequence(truth_sequence(tmp_path / "truth"))
    written = write_davis_predictions(tmp_path / "pred", "bear", track_maps())
    written.paths[2].unlink()
    with pytest.raises(DatasetError, match=r"bear: no prediction for 1 of 4 annotated frames of bear \(first missing: 00002\)"):
        read_prediction_folder(tmp_path / "pred", truth)
    partial = read_prediction_folder(tmp_path / "pred", truth, allow_partial=True)
    assert partial.alignment.partial and partial.alignment.present == (0, 1, 3)
    assert partial.alignment.to_json() == {
        "sequence": "bear", "partial": True, "annotated_frames": 4, "scored_frames": 3, "missing_frames": ["00002"],
    }
    assert partial.label_maps()[2] is None
    with pytest.raises(DatasetError, match="no prediction for frame 00002"):
        partial.labels(2)


def test_bad_prediction_files_are_named(tmp_path: Path) -> None:
    truth = read_sequence(truth_sequence(tmp_path / "truth"))
    pred = write_davis_predictions(tmp_path / "size", "bear", track_maps())
    Image.fromarray(np.zeros((H, W + 2), np.uint8)).save(pred.paths[1])
    with pytest.raises(DatasetError, match=r"size/bear: 00001\.png: prediction is 30x20 but the frames of bear are 28x20"):
        read_prediction_folder(tmp_path / "size", truth)

    pred = write_davis_predictions(tmp_path / "extra", "bear", track_maps())
    Image.fromarray(np.zeros((H, W), np.uint8)).save(pred.folder / "00099.png")
    with pytest.raises(DatasetError, match=r"00099\.png: prediction file matches no frame: sequence bear has frames 0\.\.3"):
        read_prediction_folder(tmp_path / "extra", truth)

    pred = write_davis_predictions(tmp_path / "cut", "bear", track_maps())
    data = pred.paths[3].read_bytes()
    pred.paths[3].write_bytes(data[:-30])  # pixel data cut: found when decoded
    predictions = read_prediction_folder(tmp_path / "cut", truth)
    with pytest.raises(BadImageFile, match=r"00003\.png: truncated PNG: chunk IDAT at byte \d+ needs"):
        predictions.labels(3)
    pred.paths[3].write_bytes(data[:70])  # header cut: found when the folder is read
    with pytest.raises(DatasetError, match=r"00003\.png: cannot read image header"):
        read_prediction_folder(tmp_path / "cut", truth)

    (tmp_path / "none").mkdir()
    with pytest.raises(DatasetError, match="no prediction PNGs for sequence bear"):
        read_prediction_folder(tmp_path / "none", truth)


def test_movseg_run_labels_folder_is_read_by_index(tmp_path: Path) -> None:
    truth = read_sequence(truth_sequence(tmp_path / "truth"))
    labels = tmp_path / "run" / "labels"
    labels.mkdir(parents=True)
    for i, m in enumerate(track_maps()):
        write_label_png(labels, i, m.astype(np.uint16))
    predictions = read_prediction_folder(tmp_path / "run", truth)
    np.testing.assert_array_equal(predictions.labels(2), track_maps()[2])  # 16-bit ids as written


def test_check_alignment_of_in_memory_predictions(tmp_path: Path) -> None:
    truth = read_sequence(truth_sequence(tmp_path / "truth"))
    maps = track_maps()
    assert check_alignment(truth, maps).present == (0, 1, 2, 3)
    with pytest.raises(DatasetError, match="run: 5 predicted frames but sequence bear has 4"):
        check_alignment(truth, maps + [maps[0]], source="run")
    with pytest.raises(DatasetError, match=r"no prediction for 2 of 4 annotated frames"):
        check_alignment(truth, maps[:2])
    short = check_alignment(truth, maps[:2], allow_partial=True)
    assert short.partial and short.missing_names == ("00002", "00003")
    with pytest.raises(DatasetError, match=r"frame 1: prediction is 28x10 but the frames of bear are 28x20"):
        check_alignment(truth, {0: maps[0], 1: maps[1][:10]}, allow_partial=True)
    sparse = read_sequence(truth_sequence(tmp_path / "semi", "semi", first_only=True))
    assert not check_alignment(sparse, {0: maps[0]}).partial  # only annotated frames need a prediction
