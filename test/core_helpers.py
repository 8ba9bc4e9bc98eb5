"""Small builders shared by the core (ROS-free) tests: textures, shapes, frames, IoU."""

from __future__ import annotations

import cv2
import numpy as np

from movseg_ros.frame import Frame


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """An RGB uint8 image with contrasty texture at several scales, so optical flow is well-posed."""
    rng = np.random.default_rng(seed)

    def noise(cell: int, channels: int) -> np.ndarray:
        gh, gw = h // cell + 3, w // cell + 3
        grid = rng.random((gh, gw, channels), dtype=np.float32) - 0.5
        up = cv2.resize(grid, (gw * cell, gh * cell), interpolation=cv2.INTER_CUBIC)
        return up.reshape(gh * cell, gw * cell, channels)[cell : cell + h, cell : cell + w]

    grey = 150.0 * noise(32, 1) + 110.0 * noise(8, 1) + 70.0 * noise(3, 1)
    colour = 60.0 * noise(16, 3)
    return np.clip(grey + colour + 128.0, 0, 255).astype(np.uint8)


def rect(shape: tuple[int, int], x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Boolean mask of the rectangle [x0, x1) x [y0, y1)."""
    m = np.zeros(shape, bool)
    m[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = True
    return m


def disc(shape: tuple[int, int], cx: float, cy: float, r: float) -> np.ndarray:
    """Boolean mask of the disc of radius r around (cx, cy)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def translate(image: np.ndarray, dx: float, dy: float, border: int = cv2.BORDER_REFLECT) -> np.ndarray:
    """The image moved by (dx, dy): what sat at pixel x now sits at x + (dx, dy)."""
    h, w = image.shape[:2]
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=border)


def translation(dx: float, dy: float) -> np.ndarray:
    """3x3 homography of a pure translation."""
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def frame(image: np.ndarray, index: int, period_ns: int = 100_000_000) -> Frame:
    """Frame number `index` of a stream with one frame every `period_ns`."""
    return Frame(image, stamp_ns=index * period_ns, frame_id="cam", index=index)


def blank_frame(index: int, shape: tuple[int, int] = (120, 160), period_ns: int = 100_000_000) -> Frame:
    return frame(np.zeros(shape + (3,), np.uint8), index, period_ns)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def write_scene_as_davis(root, name: str, config) -> None:
    """The built-in scene of `config` as a DAVIS-2016 sequence under root/name: JPEGImages/ and Annotations/
    (255 where an object that moves at some point is)."""
    from movseg_ros.scene import make_scene

    scene = make_scene(config)
    (root / name / "JPEGImages").mkdir(parents=True)
    (root / name / "Annotations").mkdir(parents=True)
    movers = [scene.roles["mover"], scene.roles["stopper"]]
    for i, (image, ids) in enumerate(zip(scene.frames, scene.ids)):
        cv2.imwrite(str(root / name / "JPEGImages" / f"{i:05d}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / name / "Annotations" / f"{i:05d}.png"), np.isin(ids, movers).astype(np.uint8) * 255)
