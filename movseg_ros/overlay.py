"""Pictures of the output for people: coloured masks with ids, contact sheets, videos."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from movseg_ros.output import TrackState

FONT = cv2.FONT_HERSHEY_SIMPLEX
MASK_ALPHA = 0.45  # weight of the track colour over the image inside its mask
# (fourcc, file suffix) tried in order by write_video: mp4 where FFmpeg has it, else Motion-JPEG AVI
VIDEO_CODECS = (("mp4v", ".mp4"), ("MJPG", ".avi"))


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A bright RGB colour fixed by the id alone (golden-ratio hue steps keep neighbours apart)."""
    hue = (track_id * 0.618033988749895) % 1.0
    value = 255 if track_id % 2 else 200  # alternate brightness so close hues still differ
    hsv = np.array([[[round(hue * 179), 230, value]]], np.uint8)
    r, g, b = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


def draw_overlay(image_rgb: np.ndarray, label_map: np.ndarray, tracks: list[TrackState]) -> np.ndarray:
    """The image with each visible track's mask tinted, outlined and labelled '<id> M|S' at its box."""
    if label_map.shape != image_rgb.shape[:2]:
        raise ValueError(f"label map {label_map.shape} does not match image {image_rgb.shape[:2]}")
    out = image_rgb.copy()
    shown = [t for t in tracks if t.id > 0 and np.any(label_map == t.id)]
    for t in shown:
        mask = label_map == t.id
        colour = np.array(track_colour(t.id), np.float32)
        out[mask] = (out[mask] * (1.0 - MASK_ALPHA) + colour * MASK_ALPHA).astype(np.uint8)
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, track_colour(t.id), 2, cv2.LINE_AA)
    for t in shown:  # text last so no mask paints over it
        _draw_label(out, f"{t.id} {'M' if t.moving else 'S'}", t.box, track_colour(t.id))
    return out


def label_box(text: str, box: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Where draw_overlay puts a track's text: above its box, or inside it at the top edge; x0, y0, x1, y1."""
    scale, thickness = _font_for(shape)
    (tw, th), base = cv2.getTextSize(text, FONT, scale, thickness)
    h, w = shape[:2]
    pad = 2
    x0 = min(max(0, box[0]), max(0, w - tw - 2 * pad))
    y1 = box[1] if box[1] - th - base - 2 * pad >= 0 else min(h, box[1] + th + base + 2 * pad)
    return x0, max(0, y1 - th - base - 2 * pad), min(w, x0 + tw + 2 * pad), y1


def _font_for(shape: tuple[int, ...]) -> tuple[float, int]:
    """Text scale and stroke that stay readable from 320 px to 1080p."""
    scale = max(0.4, min(shape[0], shape[1]) / 600.0)
    return scale, 1 if scale < 0.8 else 2


def _draw_label(image: np.ndarray, text: str, box: tuple[int, int, int, int], colour: tuple[int, int, int]) -> None:
    scale, thickness = _font_for(image.shape)
    x0, y0, x1, y1 = label_box(text, box, image.shape)
    cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), (0, 0, 0), -1)
    _, base = cv2.getTextSize(text, FONT, scale, thickness)
    cv2.putText(image, text, (x0 + 2, y1 - base - 1), FONT, scale, colour, thickness, cv2.LINE_AA)


def contact_sheet(images: list[np.ndarray], columns: int, width: int, captions: list[str] | None = None) -> np.ndarray:
    """A `width`-pixel-wide grid of thumbnails, `columns` per row, each captioned (default: its index)."""
    if not images:
        raise ValueError("contact_sheet needs at least one image")
    if columns < 1 or width < columns * 8:
        raise ValueError(f"cannot fit {columns} columns in {width} px")
    if captions is not None and len(captions) != len(images):
        raise ValueError(f"{len(captions)} captions for {len(images)} images")
    thumb_w = width // columns
    thumb_h = max(1, round(thumb_w * images[0].shape[0] / images[0].shape[1]))
    rows = math.ceil(len(images) / columns)
    sheet = np.zeros((rows * thumb_h, width, 3), np.uint8)
    scale = max(0.35, thumb_w / 400.0)
    for i, image in enumerate(images):
        rgb = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
        thumb = cv2.resize(rgb, (thumb_w, thumb_h), interpolation=cv2.INTER_AREA)
        text = captions[i] if captions is not None else str(i)
        (tw, th), base = cv2.getTextSize(text, FONT, scale, 1)
        cv2.rectangle(thumb, (0, 0), (tw + 4, th + base + 4), (0, 0, 0), -1)
        cv2.putText(thumb, text, (2, th + 2), FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
        r, c = divmod(i, columns)
        sheet[r * thumb_h : (r + 1) * thumb_h, c * thumb_w : (c + 1) * thumb_w] = thumb
    return sheet


class VideoWriter:
    """Streams RGB frames into a video, opening the first of `codecs` that works on the first frame."""

    def __init__(self, path: str | Path, fps: float, codecs: tuple[tuple[str, str], ...] = VIDEO_CODECS) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.codecs = codecs
        self.written: Path | None = None  # the file actually written (suffix set by the codec)
        self.count = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None

    def write(self, frame_rgb: np.ndarray) -> None:
        h, w = frame_rgb.shape[:2]
        if frame_rgb.shape != (h, w, 3) or frame_rgb.dtype != np.uint8 or (self._size not in (None, (w, h))):
            raise ValueError(f"frame {self.count} is {frame_rgb.shape} {frame_rgb.dtype}; every frame must be "
                             f"the same HxWx3 uint8 RGB")
        if self._writer is None:
            self._open(w, h)
        self._writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
        self.count += 1

    def close(self) -> Path:
        """Finish the file and return its path; an error if no frame was written."""
        if self._writer is None:
            raise ValueError(f"no frames were written to {self.path}")
        self._writer.release()
        self._writer = None
        assert self.written is not None
        return self.written

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._writer is not None:
            self.close()

    def _open(self, w: int, h: int) -> None:
        tried = []
        for fourcc, suffix in self.codecs:
            target = self.path.with_suffix(suffix)
            writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*fourcc), self.fps, (w, h))
            if writer.isOpened():
                self._writer, self._size, self.written = writer, (w, h), target
                return
            tried.append(f"{fourcc} -> {target}")
        raise RuntimeError(
            f"no video writer could open ({'; '.join(tried)}); does the folder exist and is it writable?"
        )


def write_video(
    path: str | Path, frames_rgb: list[np.ndarray], fps: float, codecs: tuple[tuple[str, str], ...] = VIDEO_CODECS
) -> Path:
    """Write RGB frames as a video (mp4v .mp4, else MJPG .avi); returns the file written."""
    if not frames_rgb:
        raise ValueError("write_video needs at least one frame")
    with VideoWriter(path, fps, codecs) as video:
        for frame in frames_rgb:
            video.write(frame)
        return video.close()
