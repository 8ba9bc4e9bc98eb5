"""Builders shared by the bag tests: synthetic frame folders, DAVIS-layout folders, the `movseg bag` command."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image as PILImage

from movseg_ros.commands import bag as bag_command


def random_frames(count: int, h: int = 36, w: int = 52, seed: int = 0) -> list[np.ndarray]:
    """`count` HxWx3 uint8 RGB images of noise (every pixel value matters in a lossless round trip)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), np.uint8) for _ in range(count)]


def label_maps(count: int, h: int = 36, w: int = 52, seed: int = 1, max_id: int = 3) -> list[np.ndarray]:
    """`count` HxW uint16 label maps: moving rectangles with ids 1..max_id on background 0."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        labels = np.zeros((h, w), np.uint16)
        for obj in range(1, max_id + 1):
            x, y = int(rng.integers(0, w - 8)), int(rng.integers(0, h - 8))
            labels[y : y + 6 + obj, x + i % 3 : x + 8 + i % 3] = obj
        out.append(labels)
    return out


def write_png_folder(folder: Path, images: list[np.ndarray]) -> Path:
    """RGB images as 00000.png, 00001.png, ... (lossless)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, rgb in enumerate(images):
        assert cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


def write_davis_folder(folder: Path, images: list[np.ndarray], labels: list[np.ndarray]) -> Path:
    """A DAVIS 2017-layout sequence: JPEGImages/ (here lossless PNG) and indexed-palette Annotations/."""
    write_png_folder(folder / "JPEGImages", images)
    (folder / "Annotations").mkdir(parents=True)
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * (256 * 3 - 12)
    for i, ids in enumerate(labels):
        png = PILImage.fromarray(ids.astype(np.uint8), mode="P")
        png.putpalette(palette)
        png.save(folder / "Annotations" / f"{i:05d}.png")
    return folder


def run_bag(*argv: str) -> int:
    """`movseg bag ARGV...` through the command module's own parser (what cli.py registers)."""
    parser = argparse.ArgumentParser(prog="movseg bag")
    bag_command.add_arguments(parser)
    return bag_command.run(parser.parse_args(list(argv)))
