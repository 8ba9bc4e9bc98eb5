"""Tiny seed-000 weights made by the real training stages (a few steps on tiny synthetic data)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from movseg_ros.cli import main
from movseg_ros.synth.config import preset
from movseg_ros.synth.coco import write_coco

REPO = Path(__file__).resolve().parent.parent
TINY = {stage: REPO / "config" / f"train_{stage}_tiny.yaml" for stage in ("motion", "appearance", "joint")}


@dataclass(frozen=True)
class TinyWeights:
    motion: Path
    appearance: Path
    joint: Path
    coco: Path  # the tiny COCO-format folder the appearance stage trained on


def train_stage(stage: str, out: Path, *extra: str) -> int:
    """`movseg train <stage>` on its tiny config into `out` (weights out/w.pt)."""
    return main(["train", stage, "--config", str(TINY[stage]), "--out-dir", str(out),
                 "--set", f"export={out / 'w.pt'}", *extra])


def make_tiny_weights(root: Path) -> TinyWeights:
    """Motion (exact then DIS flow), appearance (on COCO-format data) and joint, 3 steps each."""
    coco = root / "coco"
    write_coco(preset("motion").replace(width=96, height=64, texture_source="skimage", object_area=(0.05, 0.12)),
               coco, images=4)
    assert train_stage("motion", root / "motion") == 0
    assert train_stage("appearance", root / "appearance", "--set", "data=coco",
                       "--set", f"coco_annotations={coco / 'annotations.json'}", "--set", f"coco_images={coco / 'images'}",
                       "--set", "val_images=0") == 0
    assert train_stage("joint", root / "joint", "--set", f"motion_weights={root / 'motion' / 'w.pt'}",
                       "--set", f"appearance_weights={root / 'appearance' / 'w.pt'}") == 0
    return TinyWeights(root / "motion" / "w.pt", root / "appearance" / "w.pt", root / "joint" / "w.pt", coco)
