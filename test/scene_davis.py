"""The built-in scene as a tiny DAVIS-layout training set, for the stages that train on DAVIS-2016 train."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from movseg_ros.scene import SceneConfig, make_scene


def scene_davis(root: Path, config: SceneConfig, names: tuple[str, ...] = ("a", "b"), frames: int = 6) -> Path:
    """Consecutive runs of `frames` scene frames as sequences `names`, the mover and the stopper as the object."""
    scene = make_scene(config)
    for s, name in enumerate(names):
        (root / name / "JPEGImages").mkdir(parents=True)
        (root / name / "Annotations").mkdir(parents=True)
        for j in range(frames):
            t = frames * s + j
            cv2.imwrite(str(root / name / "JPEGImages" / f"{j:05d}.jpg"), cv2.cvtColor(scene.frames[t], cv2.COLOR_RGB2BGR))
            mask = np.isin(scene.ids[t], [scene.roles["mover"], scene.roles["stopper"]]).astype(np.uint8) * 255
            cv2.imwrite(str(root / name / "Annotations" / f"{j:05d}.png"), mask)
    return root
