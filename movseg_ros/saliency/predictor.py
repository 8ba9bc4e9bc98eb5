"""The distilled saliency network at inference: a frame in, a salient-object map of the same size out."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from movseg_ros.accel.threads import torch_threads

SHIPPED = "saliency_mobilenet_v2.pt"
_FROZEN: dict[tuple[str, int], object] = {}  # (file, mtime) -> PerShapeFrozen: one set of graphs a process


class SaliencyPredictor:
    """`predictor(rgb)` -> HxW float32 map in [0, 1]; the network sees the frame at `width` (aspect kept).

    `threads` (0: torch's setting) applies to its own calls only, so a process that also runs another
    pipeline (a report, a test) keeps its thread count."""

    def __init__(self, weights: Path | str, width: int = 256, threads: int = 1, frozen: bool = True) -> None:
        import torch

        from movseg_ros.saliency.network import load_saliency

        self.path = Path(weights)
        self.model, self.meta = load_saliency(self.path)
        self.width = width
        self._torch = torch
        self.threads = threads
        self._forward = self.model
        if frozen:  # TorchScript-frozen per frame size: about 2x faster on these cores, shared by the process's
            # predictors of this file, so each frame size is traced once however many pipelines are made
            from movseg_ros.accel.frozen import PerShapeFrozen

            key = (str(self.path.resolve()), self.path.stat().st_mtime_ns)
            if key not in _FROZEN:
                _FROZEN[key] = PerShapeFrozen(self.model)
            self._forward = _FROZEN[key]

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        torch = self._torch
        h, w = rgb.shape[:2]
        nw = min(self.width, w) // 16 * 16 or 16
        nh = max(16, int(round(h * nw / w / 16)) * 16)
        small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
        with torch_threads(self.threads), torch.inference_mode():
            logits = self._forward(torch.from_numpy(small.transpose(2, 0, 1).copy()).float()[None])[0, 0].numpy()
        prob = 1.0 / (1.0 + np.exp(-logits))
        return cv2.resize(prob.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
