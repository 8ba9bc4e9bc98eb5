"""Files that record the pipeline's answers: uint16 label PNGs, a tracks JSON table, an output folder."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from movseg_ros.output import FrameOutput, TrackState
from movseg_ros.overlay import VideoWriter, contact_sheet, draw_overlay

SHEET_COLUMNS = 4
SHEET_WIDTH = 1280  # contact sheet width in pixels (thumbnails of 320)


def label_png_path(folder: str | Path, index: int) -> Path:
    """labels/<index>.png naming: five digits, so files sort in frame order."""
    return Path(folder) / f"{index:05d}.png"


def write_label_png(folder: str | Path, index: int, label_map: np.ndarray) -> Path:
    """Save a label map as a 16-bit single-channel PNG (0 = background, value = track id)."""
    if label_map.ndim != 2 or label_map.dtype != np.uint16:
        raise ValueError(f"label map must be HxW uint16, got shape {label_map.shape} dtype {label_map.dtype}")
    path = label_png_path(folder, index)
    if not cv2.imwrite(str(path), label_map):
        raise OSError(f"could not write {path}")
    return path


def read_label_png(path: str | Path) -> np.ndarray:
    """A label map written by write_label_png, as HxW uint16."""
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None or labels.ndim != 2 or labels.dtype != np.uint16:
        raise ValueError(f"{path} is not a 16-bit single-channel label PNG")
    return labels


def track_record(track: TrackState) -> dict[str, Any]:
    """One track as plain JSON types (the /movseg/tracks fields, mask left out)."""
    return {
        "id": int(track.id),
        "score": round(float(track.score), 4),
        "moving": bool(track.moving),
        "status": track.status.name.lower(),
        "box": [int(v) for v in track.box],
        "area": int(track.area),
        "velocity": [round(float(v), 3) for v in track.velocity],
        "age": int(track.age),
        "hits": int(track.hits),
    }


def frame_record(output: FrameOutput) -> dict[str, Any]:
    """One frame's tracks with the frame's index and stamp."""
    return {
        "index": int(output.frame.index),
        "stamp_ns": int(output.frame.stamp_ns),
        "tracks": [track_record(t) for t in output.tracks],
    }


class TracksJsonWriter:
    """Collects frame records (small: no masks) and writes them as one JSON file at the end."""

    def __init__(self, path: str | Path, meta: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.meta = dict(meta or {})
        self.frames: list[dict[str, Any]] = []

    def add(self, output: FrameOutput) -> None:
        self.frames.append(frame_record(output))

    def write(self) -> Path:
        """Write {..meta, "frames": [per-frame records]}, one frame per line; returns the path."""
        rows = ",\n".join(json.dumps(r, separators=(",", ":")) for r in self.frames)
        slot = "\0frames\0"  # placeholder swapped for the rows, so each frame stays on one line
        text = json.dumps({**self.meta, "frames": slot}).replace(json.dumps(slot), f"[\n{rows}\n]" if rows else "[]")
        self.path.write_text(text + "\n", encoding="utf-8")
        return self.path


class EvenSample:
    """Keeps at most `capacity` items evenly spaced over a stream of unknown length (stride doubles)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.stride = 1
        self.items: list[tuple[int, int, Any]] = []  # (position, key, item)
        self._seen = 0

    def offer(self, key: int, make: Callable[[], Any]) -> None:
        """Consider the next item; `make` builds it only if it is kept."""
        position, self._seen = self._seen, self._seen + 1
        if position % self.stride:
            return
        self.items.append((position, key, make()))
        if len(self.items) > self.capacity:
            self.stride *= 2
            self.items = [item for item in self.items if item[0] % self.stride == 0]


class OutputFolder:
    """Everything `movseg run` leaves for one sequence: labels/, tracks.json, overlay video, contact sheet."""

    def __init__(
        self, folder: str | Path, fps: float, meta: dict[str, Any] | None = None, sheet_frames: int = 16
    ) -> None:
        self.folder = Path(folder)
        self.labels = self.folder / "labels"
        self.labels.mkdir(parents=True, exist_ok=True)
        self.tracks = TracksJsonWriter(self.folder / "tracks.json", meta)
        self.video = VideoWriter(self.folder / "overlay.mp4", fps)
        self.thumbnails = EvenSample(sheet_frames)
        self.count = 0

    def add(self, output: FrameOutput) -> None:
        """Record one frame's answer in every file."""
        write_label_png(self.labels, output.frame.index, output.label_map)
        self.tracks.add(output)
        overlay = draw_overlay(output.frame.image, output.label_map, output.tracks)
        self.video.write(overlay)
        self.thumbnails.offer(output.frame.index, lambda: _thumbnail(overlay, SHEET_WIDTH // SHEET_COLUMNS))
        self.count += 1

    def finish(self) -> dict[str, str]:
        """Close the files; returns what was written, by kind (names relative to the folder)."""
        files = {"labels": "labels/", "tracks": self.tracks.write().name}
        if self.count:
            files["overlay"] = self.video.close().name
            captions = [str(key) for _, key, _ in self.thumbnails.items]
            sheet = contact_sheet([img for _, _, img in self.thumbnails.items], SHEET_COLUMNS, SHEET_WIDTH, captions)
            sheet_path = self.folder / "contact_sheet.png"
            if not cv2.imwrite(str(sheet_path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
                raise OSError(f"could not write {sheet_path}")
            files["contact_sheet"] = sheet_path.name
        return files


def _thumbnail(image: np.ndarray, width: int) -> np.ndarray:
    height = max(1, round(width * image.shape[0] / image.shape[1]))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
