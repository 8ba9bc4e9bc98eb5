"""FBMS-59 (Freiburg-Berkeley Motion Segmentation) sequences with their sparse ground truth.

Layout: <root>/Trainingset|Testset/<seq>/<seq>_NN.jpg frames and <seq>/GroundTruth/ holding
annotated frames (every ~20th; grey .pgm or colour .ppm/.png, one grey level or colour per region)
and <seq>Def.dat, the definition file:

    Ground truth definition file; do not change!
    Total number of regions:        then one value per region, each either bare or
                                    after "Scale of region k:" (grey level, or r*65536+g*256+b)
    Confusion penality matrix       (skipped)
    Total number of frames in this shot:            N
    Total number of labeled frames for this shot:   M
    then M times: "Frame number:" n, "File name:" gt file, "Input file name:" frame file

Labels: the region whose value is 0 (black) is background (else the first region listed); the
others are numbered 1.. in the order listed. Pixels of a value the definition does not list are
returned as ignore (not scored). Without Def.dat, every distinct value over the sequence's
ground-truth files gets an id in increasing value order (0 = black = background).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from movseg_ros.datasets.errors import DatasetError
from movseg_ros.datasets.label_files import colour_codes, read_raw_labels, read_rgb
from movseg_ros.datasets.naming import check_no_missing_frames, frame_number, list_images
from movseg_ros.datasets.sequence import ImageFiles, VideoSequence

FBMS_FPS = 30.0  # the data set states none; most clips are 25-30 frames a second
SPLITS = ("Trainingset", "Testset")
GT_SUFFIXES = (".pgm", ".ppm", ".png")


@dataclass(frozen=True)
class FbmsDefinition:
    """What a <seq>Def.dat says: region values, frame count, and (frame number, gt file, input file) triples."""

    region_values: tuple[int, ...]
    frame_count: int
    labeled: tuple[tuple[int, str, str], ...]


def parse_definition(path: Path) -> FbmsDefinition:
    """Read a Def.dat tolerantly (blank lines and 'Scale of region k:' labels optional)."""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    cursor = _Cursor(path, lines)
    cursor.seek("total number of regions")
    count = cursor.integer("the number of regions")
    values = []
    while len(values) < count:
        line = cursor.next_line(f"region value {len(values)} of {count}")
        if line.lower().startswith("scale of region") or not line:
            continue
        if not re.fullmatch(r"-?\d+", line):
            cursor.fail(f"expected region value {len(values)} of {count}, got {line!r}")
        values.append(int(line))
    cursor.seek("total number of frames")
    frame_count = cursor.integer("the number of frames")
    cursor.seek("total number of labeled frames")
    labeled_count = cursor.integer("the number of labeled frames")
    labeled = []
    for _ in range(labeled_count):
        cursor.seek("frame number")
        number = cursor.integer("a frame number")
        cursor.seek("file name")
        gt_file = cursor.next_value("a ground-truth file name")
        input_file = ""
        if cursor.peek_value().lower().startswith("input file name"):
            cursor.seek("input file name")
            input_file = cursor.next_value("an input file name")
        labeled.append((number, gt_file, input_file))
    return FbmsDefinition(tuple(values), frame_count, tuple(labeled))


class _Cursor:
    """Walks the lines of a definition file; errors name the file and line."""

    def __init__(self, path: Path, lines: list[str]) -> None:
        self.path, self.lines, self.at = path, lines, 0

    def fail(self, problem: str) -> None:
        raise DatasetError(self.path, f"line {self.at}: {problem}")

    def next_line(self, wanted: str) -> str:
        if self.at >= len(self.lines):
            raise DatasetError(self.path, f"ends before {wanted}")
        self.at += 1
        return self.lines[self.at - 1]

    def next_value(self, wanted: str) -> str:
        line = ""
        while not line:
            line = self.next_line(wanted)
        return line

    def peek_value(self) -> str:
        return next((line for line in self.lines[self.at :] if line), "")

    def integer(self, wanted: str) -> int:
        line = self.next_value(wanted)
        if not re.fullmatch(r"\d+", line):
            self.fail(f"expected {wanted}, got {line!r}")
        return int(line)

    def seek(self, heading: str) -> None:
        while not self.next_line(f"'{heading}'").lower().startswith(heading):
            pass


class FbmsTruth:
    """Sparse ground-truth files by frame index, with the value -> region id map."""

    def __init__(self, files: dict[int, Path], value_ids: dict[int, int] | None) -> None:
        self.files = files
        self.annotated = tuple(sorted(files))
        self._value_ids = value_ids  # None: built from the files on first use

    def labels(self, index: int) -> np.ndarray:
        return self._decode(index)[0]

    def ignore(self, index: int) -> np.ndarray | None:
        return self._decode(index)[1]

    def _decode(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        values = _region_values(self.files[index])
        ids = self.value_ids()
        labels = np.zeros(values.shape, np.int32)
        unknown = np.zeros(values.shape, bool)
        for value in np.unique(values):
            here = values == value
            if int(value) in ids:
                labels[here] = ids[int(value)]
            else:
                unknown |= here
        return labels, (unknown if unknown.any() else None)

    def value_ids(self) -> dict[int, int]:
        """Region value -> label id (0 background)."""
        if self._value_ids is None:
            seen = sorted({int(v) for path in self.files.values() for v in np.unique(_region_values(path))})
            self._value_ids = ids_for_values(seen)
        return self._value_ids


def ids_for_values(values: list[int]) -> dict[int, int]:
    """Background is value 0 if present, else the first value; the rest get 1.. in the given order."""
    background = 0 if 0 in values else values[0]
    rest = [v for v in values if v != background]
    return {background: 0, **{v: i + 1 for i, v in enumerate(rest)}}


def _region_values(path: Path) -> np.ndarray:
    """Per-pixel region value of a ground-truth file: grey level, or r*65536+g*256+b for colour."""
    raw, kind = read_raw_labels(path)
    if kind == "index":  # an indexed PNG: its colours are what a person painted
        return colour_codes(read_rgb(path))
    return raw.astype(np.int32)


def read_sequence(folder: Path) -> VideoSequence:
    """One FBMS sequence folder (frames, GroundTruth/ with optional <seq>Def.dat)."""
    folder = Path(folder)
    images = _frame_files(folder)
    if not images:
        raise DatasetError(folder, "no frames (.jpg/.png/.ppm) in this FBMS sequence folder")
    check_no_missing_frames(images, folder)
    gt_dir = folder / "GroundTruth"
    definition_path = _definition_file(folder)
    if definition_path is not None:
        files, value_ids = _files_from_definition(definition_path, gt_dir, images)
    else:
        files, value_ids = _files_by_name(gt_dir, images), None
    truth = FbmsTruth(files, value_ids) if files else None
    return VideoSequence(folder.name, "fbms", folder, tuple(p.stem for p in images), ImageFiles(images), truth, FBMS_FPS)


def _frame_files(folder: Path) -> list[Path]:
    """The frames, in one format: where a folder has both .jpg and .ppm copies, the more numerous kind."""
    images = list_images(folder)
    suffixes = [p.suffix.lower() for p in images]
    if len(set(suffixes)) <= 1:
        return images
    kind = max(sorted(set(suffixes)), key=suffixes.count)
    return [p for p in images if p.suffix.lower() == kind]


def _definition_file(folder: Path) -> Path | None:
    for place in (folder / "GroundTruth", folder):
        candidates = sorted(place.glob("*Def.dat")) if place.is_dir() else []
        if candidates:
            return candidates[0]
    return None


def _files_from_definition(definition_path: Path, gt_dir: Path, images: list[Path]) -> tuple[dict[int, Path], dict[int, int]]:
    definition = parse_definition(definition_path)
    if not definition.region_values:
        raise DatasetError(definition_path, "lists no regions")
    index_of_stem = {p.stem: i for i, p in enumerate(images)}
    files: dict[int, Path] = {}
    for number, gt_name, input_name in definition.labeled:
        index = index_of_stem.get(Path(input_name).stem, number) if input_name else number
        if not 0 <= index < len(images):
            raise DatasetError(definition_path, f"frame number {number} ({gt_name}) is beyond the {len(images)} frames")
        gt_path = gt_dir / gt_name
        if not gt_path.is_file():
            raise DatasetError(gt_path, f"ground-truth file listed in {definition_path.name} is missing")
        files[index] = gt_path
    return files, ids_for_values(list(definition.region_values))


def _files_by_name(gt_dir: Path, images: list[Path]) -> dict[int, Path]:
    """Match <frame>_gt.pgm / <frame>.png files to frames by name, else by trailing frame number."""
    gt_files = list_images(gt_dir, GT_SUFFIXES)
    by_stem: dict[str, Path] = {}
    for path in gt_files:  # a colour .ppm beats a .pgm of the same name (the .pgm may be a weight map)
        stem = path.stem
        if stem not in by_stem or path.suffix.lower() == ".ppm":
            by_stem[stem] = path
    index_of_stem = {p.stem: i for i, p in enumerate(images)}
    index_of_number = {frame_number(p.stem): i for i, p in enumerate(images)}
    files: dict[int, Path] = {}
    for stem, path in by_stem.items():
        bare = stem[:-3] if stem.lower().endswith("_gt") else stem
        index = index_of_stem.get(bare, index_of_number.get(frame_number(bare)))
        if index is None:
            raise DatasetError(path, f"ground-truth file matches no frame in {images[0].parent}")
        if index in files:
            raise DatasetError(path, f"second ground-truth file for frame {images[index].name} (first: {files[index].name})")
        files[index] = path
    return files


def is_sequence_folder(folder: Path) -> bool:
    """A folder of frames with a GroundTruth/ folder beside them."""
    return (folder / "GroundTruth").is_dir() and bool(list_images(folder))


def find_sequences(root: Path, names: list[str] | None = None) -> list[VideoSequence]:
    """Sequences under <root>/Trainingset and <root>/Testset, or <root>/<seq>/, or <root> itself."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "FBMS folder not found")
    if is_sequence_folder(root):
        folders = [root]
    else:
        parents = [root / s for s in SPLITS if (root / s).is_dir()] or [root]
        folders = sorted((p for parent in parents for p in parent.iterdir() if is_sequence_folder(p)), key=lambda p: p.name)
    if not folders:
        raise DatasetError(root, "no FBMS sequences (looked for Trainingset/<seq>/GroundTruth/ and <seq>/GroundTruth/)")
    if names:
        missing = sorted(set(names) - {p.name for p in folders})
        if missing:
            raise DatasetError(root, f"no sequence(s) {missing}; found {sorted(p.name for p in folders)}")
        folders = [p for p in folders if p.name in names]
    return [read_sequence(p) for p in folders]
