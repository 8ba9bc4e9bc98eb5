"""A tiny `movseg train visual_memory` set-up for the tests: the built-in scene as a DAVIS-layout set."""

from __future__ import annotations

from pathlib import Path

import torch

from movseg_ros.scene import SceneConfig
from movseg_ros.visual_memory.mpnet import MPNet, MPNetArch, save_mpnet
from scene_davis import scene_davis

CONFIG = Path(__file__).resolve().parent.parent / "config"


def tiny_memory_run(tmp_path: Path, scene: SceneConfig) -> tuple[Path, list[str]]:
    """(the data folder, the command's arguments): sequences a and b of `scene`, b held aside, a random MP-Net
    (tmp_path/mp.pt), the tiny config, and the caches under tmp_path."""
    data = scene_davis(tmp_path / "davis", scene)
    torch.manual_seed(0)
    save_mpnet(tmp_path / "mp.pt", MPNet(MPNetArch()).eval(), {})
    return data, ["train", "visual_memory", "--config", str(CONFIG / "train_visual_memory_tiny.yaml"),
                  "--set", f"data_root={data}", "--set", "held_aside=[b]", "--set", f"cache_dir={tmp_path / 'cache'}",
                  "--set", f"flow_cache={tmp_path / 'flow'}", "--set", f"mpnet={tmp_path / 'mp.pt'}"]
