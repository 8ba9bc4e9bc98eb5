"""The visual memory's map for the geometric pipeline (`geometric.memory_net: visual_memory`), beside it.

The memory (seed 003's ConvGRU over ImageNet appearance and MP-Net's motion) reads the geometric pipeline's
own MP-Net map and camera-compensated residual, so it adds no flow and no MP-Net pass of its own. Its
appearance pass, and the part of the GRU step that needs no motion, start in a worker thread when a frame
arrives, overlapping the pipeline's flow; the rest of the step follows there once the pipeline has the frame's
MP-Net map, and its map of that same frame is collected where the pipeline fuses it. The output stays a
function of the input. With a saliency network
whose encoder is the memory's (both ImageNet MobileNetV2, frozen), its decoder reads the same appearance pass,
so the pipeline gets the frame's own saliency map for one decoder's cost.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np

from movseg_ros.accel.threads import torch_threads
from movseg_ros.segmenters.base import resize_to_width
from movseg_ros.segmenters.visual_memory import snap_to_edges
from movseg_ros.visual_memory.residual import residual_map


THREADS = 1  # torch threads of the worker's calls: the pipeline's own thread has the other core


class ConcurrentMemoryMap:
    """Per frame: `start(rgb)` on arrival, `feed(mpnet, residual)` once they exist, `result(size)` -> the memory's
    probability map of the frame at `size`. `reset()` starts a new stream."""

    def __init__(self, memory, work_width: int = 256, refine_radius: int = 4, refine_eps: float = 0.002,
                 saliency=None, meta: dict | None = None) -> None:
        self.memory = memory  # an OnlineMemory
        self.meta = meta or {}  # the memory file's record (what it learned from)
        self.saliency = saliency  # a SaliencyNet sharing the memory's encoder, or None
        self.work_width, self.refine_radius, self.refine_eps = work_width, refine_radius, refine_eps
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="movseg-memory")
        self._features: Future | None = None  # the frame's appearance pass (and saliency map)
        self._fed = False  # the frame's GRU step is under way
        self._step: Future | None = None

    def start(self, rgb: np.ndarray) -> None:
        """The frame's appearance pass, in the worker (after the previous frame's step: it is one stream)."""
        self._features = self._pool.submit(self._appearance, rgb)

    def _appearance(self, rgb: np.ndarray):
        small = resize_to_width(rgb, self.work_width)  # here, off the pipeline's thread
        with torch_threads(THREADS):
            taps = self.memory.features.tensors(small)
        salient = None
        if self.saliency is not None:
            import torch

            with torch_threads(THREADS), torch.no_grad():
                logits = self.saliency.decode(taps[:3])[0, 0].cpu().numpy()
            salient = cv2.resize((1.0 / (1.0 + np.exp(-logits))).astype(np.float32), (small.shape[1], small.shape[0]),
                                 interpolation=cv2.INTER_LINEAR)
        with torch_threads(THREADS):  # the step's work that needs no motion: the pipeline waits for the rest only
            prepared = self.memory.prepare(taps)
        return small, prepared, salient

    def salient(self, size: tuple[int, int]) -> np.ndarray:
        """The saliency map of the frame last started, (h, w) = `size` (waits for its appearance pass)."""
        if self.saliency is None or self._features is None:
            raise RuntimeError("memory map: no saliency network, or no frame started")
        return cv2.resize(self._features.result()[2], (size[1], size[0]), interpolation=cv2.INTER_LINEAR)

    def feed(self, mpnet: np.ndarray, residual: np.ndarray | None) -> None:
        """The frame's MP-Net map (stride 4) and, for a memory that reads it, its camera-compensated residual
        (H x W x 2 at MP-Net's input size; None: no motion, as on a stream's first frame): the GRU steps."""
        if self._features is None or self._fed:
            raise RuntimeError("memory map: feed once a frame, after start")
        self._fed = True
        self._step = self._pool.submit(self._advance, self._features, mpnet, residual)

    def _advance(self, features: Future, mpnet: np.ndarray, residual: np.ndarray | None) -> np.ndarray:
        small, prepared, _ = features.result()
        motion = mpnet
        if self.memory.net.arch.residual:
            if residual is None:
                extra = np.zeros_like(mpnet)
            else:
                magnitude = cv2.magnitude(np.ascontiguousarray(residual[..., 0]), np.ascontiguousarray(residual[..., 1]))
                extra = cv2.resize(residual_map(residual, magnitude), (mpnet.shape[1], mpnet.shape[0]),
                                   interpolation=cv2.INTER_AREA)
            motion = np.stack([mpnet, extra])
        with torch_threads(THREADS):
            logits = self.memory.step_prepared(prepared, motion)
        h, w = small.shape[:2]
        prob = 1.0 / (1.0 + np.exp(-cv2.resize(logits.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)))
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        return snap_to_edges(prob, grey, self.refine_radius, self.refine_eps).astype(np.float32)

    def result(self, size: tuple[int, int]) -> np.ndarray:
        """The map of the frame last fed, (h, w) = `size` (waits for it); a RuntimeError when none was."""
        if self._step is None:
            raise RuntimeError("memory map: no frame was fed")
        step, self._step, self._fed = self._step, None, False
        return cv2.resize(step.result(), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)

    def reset(self) -> None:
        """A new stream: work under way finishes first, then the memory forgets."""
        for pending in (self._features, self._step):
            if pending is not None:
                try:
                    pending.result()
                except Exception:  # noqa: BLE001 - the frame it was for is gone; only the memory's state matters now
                    pass
        self._features = self._step = None
        self._fed = False
        self.memory.reset()


def make_memory_map(weights: str, frozen: bool = True, saliency=None) -> ConcurrentMemoryMap:
    """The visual memory in `weights` ("" = shipped) at the visual-memory pipeline's default settings; `saliency`
    (a SaliencyNet) decodes the memory's appearance pass when its encoder is the memory's (else it is left out:
    check `.saliency`)."""
    from movseg_ros.segmenters.visual_memory import VisualMemoryConfig
    from movseg_ros.visual_memory.network import load_memory
    from movseg_ros.visual_memory.predictor import OnlineMemory

    config = VisualMemoryConfig(weights=weights)
    net, meta = load_memory(config.weights_path())
    if net.arch.saliency:
        from movseg_ros.model_files import ModelFileError

        raise ModelFileError(config.weights_path(), "a memory that reads a saliency map cannot run inside the "
                                                    "geometric pipeline")
    if saliency is not None and not same_weights(saliency.encoder, net.encoder.blocks):
        saliency = None
    return ConcurrentMemoryMap(OnlineMemory(net, frozen=frozen), config.work_width, config.refine_radius,
                               config.refine_eps, None if saliency is None else saliency.eval(), meta)


def same_weights(a, b) -> bool:
    """Whether two modules hold the same tensors under the same names."""
    import torch

    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].float(), sb[k].float()) for k in sa)
