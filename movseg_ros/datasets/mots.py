"""KITTI-MOTS and MOTSChallenge: instance masks as run-length-encoded text, and our predictions in that format.

One line per object per frame:  frame obj_id class_id img_height img_width rle
where rle is COCO's compressed run-length string (column-major), obj_id = class_id * 1000 + instance,
and class 10 / obj_id 10000 marks an ignore region. Layouts:
    KITTI-MOTS:    <root>/instances_txt/<seq>.txt, frames <root>/image_02/<seq>/000000.png (or training/image_02)
    MOTSChallenge: <root>/<seq>/gt/gt.txt, frames <root>/<seq>/img1/000001.jpg, seqinfo.ini (frameRate)
The frame number in the text matches the number in the image file name.
Ground-truth labels are the obj_id values themselves (so the class stays readable: id // 1000).
"""

from __future__ import annotations

import configparser
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pycocotools import mask as coco_mask

from movseg_ros.datasets.errors import DatasetError
from movseg_ros.datasets.naming import check_no_missing_frames, frame_number, list_images
from movseg_ros.datasets.sequence import ImageFiles, VideoSequence

IGNORE_CLASS = 10
IGNORE_ID = 10000
KITTI_FPS = 10.0
KITTI_CLASSES = {1: "car", 2: "pedestrian"}
MAX_INSTANCE = 999  # obj_id = class * 1000 + instance


@dataclass(frozen=True)
class MotsObject:
    """One line of a MOTS text file."""

    frame: int
    obj_id: int
    class_id: int
    height: int
    width: int
    rle: str
    line: int  # line number in the file, for errors

    @property
    def is_ignore(self) -> bool:
        return self.class_id == IGNORE_CLASS or self.obj_id == IGNORE_ID

    def mask(self) -> np.ndarray:
        """HxW bool mask (the RLE string was checked when the line was read)."""
        with warnings.catch_warnings():  # pycocotools' numpy-2 copy= notice, not ours to fix
            warnings.simplefilter("ignore", DeprecationWarning)
            decoded = coco_mask.decode({"size": [self.height, self.width], "counts": self.rle.encode("ascii")})
        return decoded.astype(bool)


def rle_run_lengths(counts: str) -> list[int]:
    """Decode COCO's compressed RLE string to run lengths; ValueError if it is not one.

    Each number is stored 5 bits a character (offset 48, bit 0x20 = more follows, 0x10 on the last
    character = negative); from the third number on, the value is a difference to the one two back.
    """
    runs: list[int] = []
    position = 0
    while position < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(counts):
                raise ValueError("the string ends inside a number")
            code = ord(counts[position]) - 48
            if not 0 <= code < 64:
                raise ValueError(f"character {counts[position]!r} is not an RLE digit")
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            position += 1
            shift += 5
            if not more and code & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            raise ValueError("negative run length")
        runs.append(value)
    return runs


def parse_mots_txt(path: Path) -> dict[int, list[MotsObject]]:
    """Objects by frame number; a malformed line is an error naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as e:
        raise DatasetError(path, f"not a MOTS text file (non-ASCII byte at {e.start})") from None
    except OSError as e:
        raise DatasetError(path, f"cannot read ({e.strerror})") from None
    frames: dict[int, list[MotsObject]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        obj = _parse_line(path, number, line)
        frames.setdefault(obj.frame, []).append(obj)
    return frames


def _parse_line(path: Path, number: int, line: str) -> MotsObject:
    fields = line.split()
    where = f"{path}:{number}"
    if len(fields) != 6:
        raise DatasetError(where, f"expected 6 fields 'frame obj_id class_id height width rle', got {len(fields)}")
    try:
        frame, obj_id, class_id, height, width = (int(f) for f in fields[:5])
    except ValueError:
        raise DatasetError(where, f"the first five fields must be integers, got {' '.join(fields[:5])!r}") from None
    if frame < 0 or obj_id < 0 or height <= 0 or width <= 0:
        raise DatasetError(where, "negative frame or id, or empty image size")
    try:
        runs = rle_run_lengths(fields[5])
    except ValueError as e:
        raise DatasetError(where, f"bad RLE string: {e}") from None
    if sum(runs) != height * width:
        raise DatasetError(where, f"RLE covers {sum(runs)} pixels, but the image is {width}x{height} = {height * width}")
    return MotsObject(frame, obj_id, class_id, height, width, fields[5], number)


def objects_to_labels(objects: list[MotsObject], size: tuple[int, int], source: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Label map (obj_id values) and ignore mask of one frame's objects; overlapping objects are an error."""
    labels = np.zeros(size, np.int32)
    ignore = np.zeros(size, bool)
    for obj in objects:
        if (obj.height, obj.width) != size:
            raise DatasetError(
                f"{source}:{obj.line}", f"mask is {obj.width}x{obj.height} but the frame is {size[1]}x{size[0]}"
            )
        mask = obj.mask()
        if obj.is_ignore:
            ignore |= mask
            continue
        clash = mask & (labels > 0)
        if clash.any():
            other = int(labels[clash][0])
            raise DatasetError(f"{source}:{obj.line}", f"object {obj.obj_id} overlaps object {other} in frame {obj.frame}")
        labels[mask] = obj.obj_id
    return labels, (ignore if ignore.any() else None)


class MotsTruth:
    """Every frame is annotated (a frame without lines has no objects); masks decoded on demand."""

    def __init__(self, source: Path, objects: dict[int, list[MotsObject]], count: int, size: tuple[int, int]) -> None:
        self.source, self.objects, self.size = source, objects, size
        self.annotated = tuple(range(count))

    def labels(self, index: int) -> np.ndarray:
        return objects_to_labels(self.objects.get(index, []), self.size, self.source)[0]

    def ignore(self, index: int) -> np.ndarray | None:
        return objects_to_labels(self.objects.get(index, []), self.size, self.source)[1]


def read_sequence(name: str, image_dir: Path, txt: Path | None, dataset: str = "kitti_mots", fps: float = KITTI_FPS) -> VideoSequence:
    """Frames from `image_dir`, truth from the MOTS text file `txt` (frame numbers match file numbers)."""
    images = list_images(image_dir, (".png", ".jpg", ".jpeg"))
    if not images:
        raise DatasetError(image_dir, "no frames (.png/.jpg) in this folder")
    check_no_missing_frames(images, image_dir)
    frames = ImageFiles(images)
    truth = None
    if txt is not None:
        by_number = parse_mots_txt(txt)
        index_of = {frame_number(p.stem): i for i, p in enumerate(images)}
        objects: dict[int, list[MotsObject]] = {}
        for number, objs in by_number.items():
            if number not in index_of:
                raise DatasetError(f"{txt}:{objs[0].line}", f"frame {number} has no image in {image_dir}")
            objects[index_of[number]] = objs
        truth = MotsTruth(txt, objects, len(images), frames.size())
        for objs in objects.values():  # sizes checked up front: a mismatch is a data error, not a late surprise
            for obj in objs:
                if (obj.height, obj.width) != truth.size:
                    raise DatasetError(
                        f"{txt}:{obj.line}", f"mask is {obj.width}x{obj.height} but the frames are {truth.size[1]}x{truth.size[0]}"
                    )
    categories = KITTI_CLASSES if dataset == "kitti_mots" else {2: "pedestrian"}
    return VideoSequence(name, dataset, image_dir, tuple(p.stem for p in images), frames, truth, fps, categories)


def kitti_image_root(root: Path) -> Path | None:
    for candidate in (root / "image_02", root / "training" / "image_02", root / "testing" / "image_02"):
        if candidate.is_dir():
            return candidate
    return None


def find_sequences(root: Path, names: list[str] | None = None) -> list[VideoSequence]:
    """KITTI-MOTS (<root>/instances_txt/) or MOTSChallenge (<root>/<seq>/img1 + gt/gt.txt, or <root> one such)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, "MOTS folder not found")
    if (root / "instances_txt").is_dir():
        images = kitti_image_root(root)
        if images is None:
            raise DatasetError(root, "instances_txt/ found but no image_02/ or training/image_02/ with the frames")
        found = {p.stem: p for p in sorted((root / "instances_txt").glob("*.txt"))}
        chosen = _choose(root, found, names)
        return [read_sequence(n, images / n, found[n], "kitti_mots", KITTI_FPS) for n in chosen]
    if (root / "img1").is_dir():
        return [_challenge_sequence(root)]
    found = {p.name: p for p in sorted(root.iterdir()) if (p / "img1").is_dir()}
    if not found:
        raise DatasetError(root, "no MOTS sequences (looked for instances_txt/ + image_02/, and <seq>/img1/ + <seq>/gt/gt.txt)")
    return [_challenge_sequence(found[n]) for n in _choose(root, found, names)]


def _choose(root: Path, found: dict[str, Path], names: list[str] | None) -> list[str]:
    if not found:
        raise DatasetError(root, "no sequences found")
    if names:
        missing = sorted(set(names) - set(found))
        if missing:
            raise DatasetError(root, f"no sequence(s) {missing}; found {sorted(found)}")
        return [n for n in found if n in names]
    return list(found)


def _challenge_sequence(folder: Path) -> VideoSequence:
    txt = folder / "gt" / "gt.txt"
    fps = 30.0
    info = folder / "seqinfo.ini"
    if info.is_file():
        parser = configparser.ConfigParser()
        try:
            parser.read(info)
            fps = float(parser.get("Sequence", "frameRate", fallback="30"))
        except (configparser.Error, ValueError) as e:
            raise DatasetError(info, f"cannot read frameRate ({e})") from None
    return read_sequence(folder.name, folder / "img1", txt if txt.is_file() else None, "motschallenge", fps)


def encode_rle(mask: np.ndarray) -> str:
    """COCO compressed RLE string of an HxW bool mask."""
    return coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode("ascii")


def write_mots_txt(
    path: Path,
    frames: Iterable[np.ndarray],
    class_id: int = 2,
    start_frame: int = 0,
    renumber: bool = False,
) -> dict[int, int]:
    """Write label maps (0 = background, value = track id) as a MOTS result file; returns track id -> obj_id.

    obj_id = class_id * 1000 + track id, so track ids must be 1..999; with `renumber` they are
    replaced by 1.. in order of first appearance (kept consistent over the whole sequence).
    Label maps cannot overlap, so neither can the written masks. Frame k is numbered start_frame + k
    (0 for KITTI-MOTS, 1 for MOTSChallenge).
    """
    path = Path(path)
    if not 1 <= class_id <= 9:
        raise ValueError(f"class_id must be 1..9 (10 is the ignore class), got {class_id}")
    obj_ids: dict[int, int] = {}
    lines: list[str] = []
    size: tuple[int, int] | None = None
    for k, labels in enumerate(frames):
        if labels.ndim != 2:
            raise DatasetError(path, f"frame {k}: label map must be HxW, got shape {labels.shape}")
        if size is None:
            size = labels.shape
        elif labels.shape != size:
            raise DatasetError(path, f"frame {k} is {labels.shape[1]}x{labels.shape[0]} but frame 0 is {size[1]}x{size[0]}")
        for track in _ids_in_order_of_appearance(labels):
            if track not in obj_ids:
                instance = len(obj_ids) + 1 if renumber else track
                if not 1 <= instance <= MAX_INSTANCE:
                    problem = (
                        f"more than {MAX_INSTANCE} tracks" if renumber
                        else f"track id {track} does not fit obj_id = class * 1000 + id (1..{MAX_INSTANCE}); "
                        "write with renumber=True"
                    )
                    raise DatasetError(path, f"frame {k}: {problem}")
                obj_ids[track] = class_id * 1000 + instance
            rle = encode_rle(labels == track)
            lines.append(f"{start_frame + k} {obj_ids[track]} {class_id} {size[0]} {size[1]} {rle}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="ascii")
    return obj_ids


def _ids_in_order_of_appearance(labels: np.ndarray) -> list[int]:
    """Non-zero values of a label map, in raster order of their first pixel."""
    flat = labels.ravel()
    values, first = np.unique(flat, return_index=True)
    keep = values > 0
    return [int(v) for v in values[keep][np.argsort(first[keep], kind="stable")]]


def read_mots_label_maps(
    path: Path, frame_count: int | None = None, size: tuple[int, int] | None = None, start_frame: int = 0
) -> list[np.ndarray]:
    """A MOTS text file as one HxW int32 label map (obj_id values) per frame, from `start_frame` on.

    Frames without lines are empty maps; `size` is needed only when the file has no line at all.
    Ignore-class lines are left out; overlapping masks and lines past `frame_count` are errors.
    """
    path = Path(path)
    objects = parse_mots_txt(path)
    sizes = {(o.height, o.width) for objs in objects.values() for o in objs}
    if len(sizes) > 1:
        raise DatasetError(path, f"lines give different image sizes {sorted(sizes)}")
    if sizes:
        file_size = sizes.pop()
        if size is not None and tuple(size) != file_size:
            raise DatasetError(path, f"masks are {file_size[1]}x{file_size[0]} but {size[1]}x{size[0]} was expected")
        size = file_size
    if size is None:
        raise DatasetError(path, "no lines, and no image size given")
    for number, objs in objects.items():
        if number < start_frame or (frame_count is not None and number >= start_frame + frame_count):
            last = f"{start_frame + frame_count - 1}" if frame_count is not None else "..."
            raise DatasetError(f"{path}:{objs[0].line}", f"frame {number} is outside frames {start_frame}..{last}")
    count = frame_count if frame_count is not None else (max(objects) - start_frame + 1 if objects else 0)
    return [objects_to_labels([o for o in objects.get(start_frame + k, []) if not o.is_ignore], size, path)[0] for k in range(count)]
