"""The refinement at inference: a frame's EvidenceMaps in, the object probability at the work size out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from movseg_ros.refine.features import EvidenceMaps, stack_features

SHIPPED = "refine_geometric.pt"


class MaskRefiner:
    """`refiner(maps)` -> HxW float32 probability in [0, 1] at the maps' (work) size."""

    def __init__(self, weights: Path | str) -> None:
        import torch

        from movseg_ros.refine.network import load_refine

        self.path = Path(weights)
        self.model, self.meta = load_refine(self.path)
        self._torch = torch

    def __call__(self, maps: EvidenceMaps) -> np.ndarray:
        torch = self._torch
        features = torch.from_numpy(stack_features(maps, self.model.arch.scale))[None]
        fused = torch.from_numpy(np.ascontiguousarray(maps.fused, dtype=np.float32))[None, None]
        with torch.inference_mode():
            logits = self.model(features, fused)[0, 0]
        return torch.sigmoid(logits).numpy()
