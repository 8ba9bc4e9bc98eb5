"""FBMS-59 reader on hand-made sequences: Def.dat (both spellings), grey .pgm and colour .ppm truth, no Def.dat."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from movseg_ros.datasets import DatasetError, open_dataset
from movseg_ros.datasets.fbms import find_sequences, parse_definition, read_sequence

H, W = 20, 30


def write_frames(folder: Path, name: str, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, count + 1):  # FBMS numbers frames from 01
        assert cv2.imwrite(str(folder / f"{name}_{i:02d}.jpg"), np.full((H, W, 3), 10 * i, np.uint8))


def grey_truth(shift: int) -> np.ndarray:
    """Grey levels: 0 background, 200 a car, 100 a person, 50 a level the definition does not list."""
    g = np.zeros((H, W), np.uint8)
    g[2:8, 3 + shift : 10 + shift] = 200
    g[10:18, 18:24] = 100
    g[0, :] = 50
    return g


def definition(values: list[int], frames: int, labeled: list[tuple[int, str, str]], scale_labels: bool) -> str:
    lines = ["Ground truth definition file; do not change!", "", "Total number of regions:", str(len(values))]
    for k, v in enumerate(values):
        lines += ["", f"Scale of region {k}:", str(v)] if scale_labels else ["", str(v)]
    lines += ["", "Confusion penality matrix"]
    lines += [" ".join("0" if r == c else "1" for c in range(len(values))) for r in range(len(values))]
    lines += ["", "Total number of frames in this shot:", str(frames), "Total number of labeled frames for this shot:", str(len(labeled))]
    for number, gt, image in labeled:
        lines += ["Frame number:", str(number), "File name:", gt, "Input file name:", image]
    return "\n".join(lines) + "\n"


def make_grey_sequence(root: Path, name: str = "cars1", scale_labels: bool = True) -> Path:
    folder = root / name
    write_frames(folder, name, 6)
    gt = folder / "GroundTruth"
    gt.mkdir()
    for number in (0, 4):
        assert cv2.imwrite(str(gt / f"{name}_{number + 1:02d}_gt.pgm"), grey_truth(number))
    labeled = [(n, f"{name}_{n + 1:02d}_gt.pgm", f"{name}_{n + 1:02d}.ppm") for n in (0, 4)]
    (gt / f"{name}Def.dat").write_text(definition([0, 200, 100], 6, labeled, scale_labels))
    return folder


@pytest.mark.parametrize("scale_labels", [True, False])
def test_def_dat_regions_in_listed_order_and_unlisted_level_ignored(tmp_path: Path, scale_labels: bool) -> None:
    seq = read_sequence(make_grey_sequence(tmp_path, scale_labels=scale_labels))
    assert (seq.name, seq.dataset, len(seq), seq.size) == ("cars1", "fbms", 6, (H, W))
    assert seq.frame_names[0] == "cars1_01" and seq.annotated == (0, 4)
    for index in (0, 4):
        grey = grey_truth(index)
        expected = np.select([grey == 200, grey == 100], [1, 2], 0).astype(np.int32)  # listed 0, 200, 100
        np.testing.assert_array_equal(seq.labels(index), expected)
        np.testing.assert_array_equal(seq.ignore(index), grey == 50)
    with pytest.raises(DatasetError, match="not annotated"):
        seq.labels(2)


def test_def_dat_parser_reads_every_field(tmp_path: Path) -> None:
    path = tmp_path / "xDef.dat"
    path.write_text(definition([0, 65280, 255], 40, [(0, "x_01_gt.ppm", "x_01.ppm"), (20, "x_21_gt.ppm", "x_21.ppm")], True))
    d = parse_definition(path)
    assert d.region_values == (0, 65280, 255) and d.frame_count == 40
    assert d.labeled == ((0, "x_01_gt.ppm", "x_01.ppm"), (20, "x_21_gt.ppm", "x_21.ppm"))


def test_colour_ppm_truth_uses_colour_codes(tmp_path: Path) -> None:
    folder = tmp_path / "marple2"
    write_frames(folder, "marple2", 3)
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[1:5, 1:5] = (255, 0, 0)  # code 16711680
    rgb[10:15, 10:15] = (0, 255, 0)  # code 65280
    (folder / "GroundTruth").mkdir()
    assert cv2.imwrite(str(folder / "GroundTruth" / "marple2_02_gt.ppm"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    labeled = [(1, "marple2_02_gt.ppm", "marple2_02.ppm")]
    (folder / "GroundTruth" / "marple2Def.dat").write_text(definition([0, 65280, 16711680], 3, labeled, False))
    seq = read_sequence(folder)
    assert seq.annotated == (1,)
    expected = np.zeros((H, W), np.int32)
    expected[10:15, 10:15] = 1
    expected[1:5, 1:5] = 2
    np.testing.assert_array_equal(seq.labels(1), expected)
    assert seq.ignore(1) is None


def test_without_def_dat_each_colour_gets_a_stable_id(tmp_path: Path) -> None:
    folder = tmp_path / "horses01"
    write_frames(folder, "horses01", 5)
    (folder / "GroundTruth").mkdir()
    a = np.zeros((H, W, 3), np.uint8)
    a[2:6, 2:6] = (0, 0, 255)  # code 255 -> id 1 (smallest non-zero code)
    b = a.copy()
    b[12:16, 12:16] = (255, 255, 0)  # code 16776960 -> id 2
    for name, rgb in (("horses01_01_gt.png", a), ("horses01_05_gt.png", b)):
        assert cv2.imwrite(str(folder / "GroundTruth" / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    seq = read_sequence(folder)
    assert seq.annotated == (0, 4)
    assert sorted(np.unique(seq.labels(0)).tolist()) == [0, 1]
    expected = np.zeros((H, W), np.int32)
    expected[2:6, 2:6] = 1
    expected[12:16, 12:16] = 2
    np.testing.assert_array_equal(seq.labels(4), expected)


def test_training_and_test_sets_and_detection(tmp_path: Path) -> None:
    make_grey_sequence(tmp_path / "Trainingset", "cars1")
    make_grey_sequence(tmp_path / "Testset", "cars10")
    assert [s.name for s in find_sequences(tmp_path)] == ["cars1", "cars10"]
    assert [s.dataset for s in open_dataset(tmp_path)] == ["fbms", "fbms"]
    assert [s.name for s in open_dataset(tmp_path / "Testset" / "cars10")] == ["cars10"]
    assert [s.name for s in open_dataset(tmp_path, names=["cars10"])] == ["cars10"]


def test_bad_fbms_input_names_the_file(tmp_path: Path) -> None:
    folder = make_grey_sequence(tmp_path, "bad")
    def_dat = folder / "GroundTruth" / "badDef.dat"
    text = def_dat.read_text()
    def_dat.write_text(text.replace("Scale of region 1:\n200", "Scale of region 1:\ntwo hundred"))
    with pytest.raises(DatasetError, match=r"badDef\.dat: line \d+: expected region value 1 of 3, got 'two hundred'"):
        read_sequence(folder)
    def_dat.write_text(text.split("Total number of frames")[0])
    with pytest.raises(DatasetError, match=r"badDef\.dat: ends before 'total number of frames'"):
        read_sequence(folder)
    def_dat.write_text(text)
    (folder / "GroundTruth" / "bad_05_gt.pgm").unlink()
    with pytest.raises(DatasetError, match=r"bad_05_gt\.pgm: ground-truth file listed in badDef\.dat is missing"):
        read_sequence(folder)
    (folder / "bad_03.jpg").unlink()
    with pytest.raises(DatasetError, match=r"bad_03\.jpg: frame missing"):
        read_sequence(folder)


def test_jpg_and_ppm_copies_of_the_frames_count_once(tmp_path: Path) -> None:
    folder = make_grey_sequence(tmp_path, "cats01")
    assert cv2.imwrite(str(folder / "cats01_01.ppm"), np.zeros((H, W, 3), np.uint8))  # a stray original-format frame
    seq = read_sequence(folder)
    assert len(seq) == 6 and seq.frame_names[0] == "cats01_01" and seq.frames.paths[0].suffix == ".jpg"
