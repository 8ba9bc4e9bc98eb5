"""KITTI-MOTS / MOTSChallenge text: reading truth with ignore regions, bad lines, and our writer's round trip."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as coco_mask

from movseg_ros.datasets import DatasetError, open_dataset
from movseg_ros.datasets.mots import (
    parse_mots_txt,
    read_mots_label_maps,
    rle_run_lengths,
    write_mots_txt,
)

H, W = 18, 26


def box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def rle(mask: np.ndarray) -> str:
    return coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode()


# frame -> [(obj_id, class_id, mask)]; 10000 is KITTI's ignore region
TRUTH = {
    0: [(1001, 1, box(2, 6, 2, 8))],
    1: [(1001, 1, box(2, 6, 4, 10)), (2002, 2, box(10, 16, 15, 19))],
    2: [(2002, 2, box(10, 16, 16, 20)), (10000, 10, box(0, 3, 20, 26))],
    # frame 3: no objects, no lines
}


def truth_lines(first_frame: int = 0) -> str:
    return "".join(
        f"{frame + first_frame} {obj} {cls} {H} {W} {rle(mask)}\n" for frame, objs in TRUTH.items() for obj, cls, mask in objs
    )


def expected_labels(frame: int) -> np.ndarray:
    labels = np.zeros((H, W), np.int32)
    for obj, cls, mask in TRUTH.get(frame, []):
        if cls != 10:
            labels[mask] = obj
    return labels


def make_kitti(root: Path, seq: str = "0002", frames: int = 4) -> Path:
    (root / "image_02" / seq).mkdir(parents=True)
    for i in range(frames):
        assert cv2.imwrite(str(root / "image_02" / seq / f"{i:06d}.png"), np.full((H, W, 3), 20 * i, np.uint8))
    (root / "instances_txt").mkdir(exist_ok=True)
    (root / "instances_txt" / f"{seq}.txt").write_text(truth_lines())
    return root


def test_kitti_mots_truth_ids_and_ignore_region(tmp_path: Path) -> None:
    (seq,) = open_dataset(make_kitti(tmp_path))
    assert (seq.name, seq.dataset, len(seq), seq.size, seq.fps) == ("0002", "kitti_mots", 4, (H, W), 10.0)
    assert seq.annotated == (0, 1, 2, 3) and seq.categories[1] == "car"
    for frame in range(4):
        np.testing.assert_array_equal(seq.labels(frame), expected_labels(frame))
    np.testing.assert_array_equal(seq.ignore(2), box(0, 3, 20, 26))
    assert seq.ignore(0) is None and seq.ignore(3) is None
    assert not seq.binary(3).any()


def test_rle_decoder_agrees_with_pycocotools() -> None:
    mask = box(3, 7, 5, 9) | box(12, 14, 0, 26)
    runs = rle_run_lengths(rle(mask))
    column_major = mask.T.ravel()
    boundaries = np.flatnonzero(np.diff(column_major.astype(np.int8))) + 1
    expected = np.diff(np.concatenate([[0], boundaries, [column_major.size]])).tolist()
    assert runs == expected  # starts with a background run, as the format does
    assert rle_run_lengths(rle(np.ones((H, W), bool))) == [0, H * W]


def test_motschallenge_layout_counts_frames_from_one(tmp_path: Path) -> None:
    seq_dir = tmp_path / "MOTS20-02"
    (seq_dir / "img1").mkdir(parents=True)
    (seq_dir / "gt").mkdir()
    for i in range(1, 5):
        assert cv2.imwrite(str(seq_dir / "img1" / f"{i:06d}.jpg"), np.zeros((H, W, 3), np.uint8))
    (seq_dir / "gt" / "gt.txt").write_text(truth_lines(first_frame=1))
    (seq_dir / "seqinfo.ini").write_text("[Sequence]\nname=MOTS20-02\nframeRate=25\nseqLength=4\n")
    (seq,) = open_dataset(tmp_path)
    assert (seq.name, seq.dataset, seq.fps, seq.frame_names[0]) == ("MOTS20-02", "motschallenge", 25.0, "000001")
    for frame in range(4):
        np.testing.assert_array_equal(seq.labels(frame), expected_labels(frame))


@pytest.mark.parametrize(
    "line, problem",
    [
        (f"0 1001 1 {H} {W}", "expected 6 fields"),
        (f"0 car 1 {H} {W} {rle(box(0, 2, 0, 2))}", "must be integers"),
        (f"0 1001 1 {H} {W} ab~", r"bad RLE string: character '~'"),
        (f"0 1001 1 {H} {W} {rle(np.zeros((H, W + 1), bool))}", r"RLE covers 486 pixels, but the image is 26x18 = 468"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "0001.txt"
    path.write_text(truth_lines() + line + "\n")
    with pytest.raises(DatasetError, match=rf"0001\.txt:6: .*{problem}"):
        parse_mots_txt(path)


def test_truth_that_contradicts_the_images(tmp_path: Path) -> None:
    root = make_kitti(tmp_path / "size")
    txt = root / "instances_txt" / "0002.txt"
    txt.write_text(truth_lines() + f"3 1003 1 {H + 1} {W} {rle(np.zeros((H + 1, W), bool))}\n")
    with pytest.raises(DatasetError, match=r"0002\.txt:6: mask is 26x19 but the frames are 26x18"):
        open_dataset(root)
    txt.write_text(truth_lines() + f"9 1003 1 {H} {W} {rle(box(0, 1, 0, 1))}\n")
    with pytest.raises(DatasetError, match=r"0002\.txt:6: frame 9 has no image"):
        open_dataset(root)
    txt.write_text(truth_lines() + f"0 2005 2 {H} {W} {rle(box(3, 4, 3, 4))}\n")
    (seq,) = open_dataset(root)
    with pytest.raises(DatasetError, match=r"0002\.txt:6: object 2005 overlaps object 1001 in frame 0"):
        seq.labels(0)


def prediction_maps() -> list[np.ndarray]:
    maps = [np.zeros((H, W), np.int32) for _ in range(4)]
    maps[0][2:6, 2:8] = 7
    maps[1][2:6, 4:10] = 7
    maps[1][10:16, 15:19] = 3
    maps[2][10:16, 16:20] = 3
    maps[2][0:2, 0:2] = 12
    return maps  # frame 3 empty


def test_write_then_read_mots_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "results" / "0002.txt"
    ids = write_mots_txt(path, prediction_maps(), class_id=2)
    assert ids == {7: 2007, 3: 2003, 12: 2012}
    back = read_mots_label_maps(path, frame_count=4)
    for written, read in zip(prediction_maps(), back):
        np.testing.assert_array_equal(read, np.where(written > 0, 2000 + written, 0))
    first = path.read_text().splitlines()[0].split()
    assert first[:5] == ["0", "2007", "2", str(H), str(W)]
    with warnings.catch_warnings():  # pycocotools' own numpy-2 notice
        warnings.simplefilter("ignore", DeprecationWarning)
        decoded = coco_mask.decode({"size": [H, W], "counts": first[5].encode()})  # what the official tools do
    np.testing.assert_array_equal(decoded.astype(bool), prediction_maps()[0] == 7)
    # our predictions read as a truth sequence too (same format as instances_txt)
    root = make_kitti(tmp_path / "kitti")
    (root / "instances_txt" / "0002.txt").write_text(path.read_text())
    (seq,) = open_dataset(root)
    np.testing.assert_array_equal(seq.labels(2), back[2])


def test_writer_ids_must_fit_unless_renumbered(tmp_path: Path) -> None:
    maps = prediction_maps()
    maps[3][5:7, 5:7] = 1500
    with pytest.raises(DatasetError, match=r"frame 3: track id 1500 does not fit .* renumber=True"):
        write_mots_txt(tmp_path / "a.txt", maps)
    ids = write_mots_txt(tmp_path / "a.txt", maps, class_id=1, start_frame=1, renumber=True)
    assert ids == {7: 1001, 3: 1002, 12: 1003, 1500: 1004}  # first appearance order
    back = read_mots_label_maps(tmp_path / "a.txt", frame_count=4, start_frame=1)
    assert back[3][5, 5] == 1004 and back[0][2, 2] == 1001
    with pytest.raises(DatasetError, match=r"a\.txt:\d+: frame 4 is outside frames 1\.\.3"):
        read_mots_label_maps(tmp_path / "a.txt", frame_count=3, start_frame=1)
    maps[2] = np.zeros((H, W + 1), np.int32)
    with pytest.raises(DatasetError, match="frame 2 is 27x18 but frame 0 is 26x18"):
        write_mots_txt(tmp_path / "b.txt", maps)
