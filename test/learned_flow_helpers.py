"""Shared bits of the learned-flow tests: weights files of untrained RAFTs, held-out synthetic pairs."""

from __future__ import annotations

from pathlib import Path

import torch

from movseg_ros.learned_flow.raft import build_raft

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "raft_small_synth.pt"


def plain_state_dict_file(path: Path, arch: str = "raft_small", seed: int = 0) -> Path:
    """A torchvision-style (plain) state dict of an untrained RAFT, as torch.save writes it."""
    torch.manual_seed(seed)
    torch.save(build_raft(arch).state_dict(), path)
    return path
