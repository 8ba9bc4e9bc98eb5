"""Training data for the visual memory: cached per-frame inputs of DAVIS-layout sequences, served as runs.

The appearance encoder is frozen and MP-Net is trained first, so each frame's encoder features and motion
map (of the frame and of its mirror image) are computed once and cached per sequence, the two apart, each
under a fingerprint of what made it (a new MP-Net re-records only the motion maps). A run is T consecutive frames of one sequence, a pure function of (seed, index), with
seed 003's stop-and-go augmentation: the object stops (the frame holds, no motion, the mask held), or is
static at the start (the online target is empty until it first moves; the offline one is its mask).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from movseg_ros.datasets.errors import DatasetError
from movseg_ros.model_files import file_sha256
from movseg_ros.saliency.data import davis_frames, read_item
from movseg_ros.segmenters.base import resize_to_width
from movseg_ros.visual_memory.residual import residual_map, stride4

MotionMap = Callable[[np.ndarray], np.ndarray]  # motion at a frame's pixels (H, W, 2) -> probability (H/4, W/4)
FeatureMaps = Callable[[np.ndarray], tuple[np.ndarray, ...]]  # RGB (H, W, 3) -> stride 4, 8 and 16 (and 32) features
CACHE_VERSION = 1


@dataclass
class SequenceInputs:
    """One sequence's cached inputs; axis 1 of the feature arrays is (as recorded, mirrored)."""

    name: str
    s4: np.ndarray  # (N, 2, 24, h4, w4) float16
    s8: np.ndarray  # (N, 2, 32, h8, w8) float16
    s16: np.ndarray  # (N, 2, 96, h16, w16) float16
    motion: np.ndarray  # (N, 2, C, h4, w4) float16: MP-Net's map (the residual's, the saliency's); frame 0 holds the still maps
    masks: np.ndarray  # (N, H, W) bool at the work size (as recorded)
    still: np.ndarray  # (M, h4, w4) float16: the first M (motion) maps when nothing moves; the saliency map stays the frame's
    s32: np.ndarray | None = None  # (N, 2, 320, h32, w32) float16, for a deep memory

    def __len__(self) -> int:
        return len(self.masks)


def appearance_fingerprint(work_width: int, deep: bool = False) -> str:
    """What made an appearance cache: the work width and the encoder (ImageNet MobileNetV2, frozen, strides
    4-16, or 4-32 when `deep`)."""
    taps = ["s4", "s32"] if deep else ["s4"]
    return hashlib.sha256(json.dumps([CACHE_VERSION, work_width, "imagenet", *taps]).encode()).hexdigest()[:12]


def motion_fingerprint(mpnet_file: Path, work_width: int, dis_preset: str) -> str:
    """What made a motion cache: MP-Net's file bytes, the work width and the flow preset."""
    digest = file_sha256(mpnet_file)[:16]
    return hashlib.sha256(json.dumps([CACHE_VERSION, digest, work_width, dis_preset]).encode()).hexdigest()[:12]


def residual_fingerprint(work_width: int, dis_preset: str) -> str:
    """What made a residual cache: the work width and the flow preset (the residual has no weights)."""
    return hashlib.sha256(json.dumps([CACHE_VERSION, "residual", work_width, dis_preset]).encode()).hexdigest()[:12]


def saliency_fingerprint(saliency_file: Path, work_width: int) -> str:
    """What made a saliency cache: the saliency network's file bytes and the work width."""
    digest = file_sha256(saliency_file)[:16]
    return hashlib.sha256(json.dumps([CACHE_VERSION, "saliency", digest, work_width]).encode()).hexdigest()[:12]


def record_saliency(appearance: Path, decode: Callable[[tuple[torch.Tensor, ...]], torch.Tensor]) -> dict[str, np.ndarray]:
    """The saliency probability of every frame of a recorded appearance cache (as recorded and mirrored), from
    its stride-4, 8 and 16 features through `decode` (SaliencyNet.decode: the two networks share the encoder)."""
    a = _read_arrays(appearance, ("s4", "s8", "s16"))
    maps = []
    with torch.no_grad():
        for k in range(len(a["s4"])):
            taps = tuple(torch.from_numpy(a[key][k].astype(np.float32)) for key in ("s4", "s8", "s16"))
            maps.append(torch.sigmoid(decode(taps)).numpy())
    return {"saliency": np.stack(maps).astype(np.float16)}


def _frames(root: Path, name: str, work_width: int):
    """(index, item, RGB at the work width, mask at the work width) for every frame of the sequence."""
    for k, item in enumerate(davis_frames(root, [name])):
        rgb, mask, _ = read_item(item)
        small = resize_to_width(rgb, work_width)
        h, w = small.shape[:2]
        yield k, item, small, cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)


def record_appearance(root: Path, name: str, features: FeatureMaps, work_width: int) -> dict[str, np.ndarray]:
    """Every frame of sequence `name` (as recorded and mirrored) through the frozen encoder, with its mask
    (s4, s8, s16, and s32 when the encoder gives it)."""
    taps: list[list] = []
    masks = []
    for _, _, small, mask in _frames(root, name, work_width):
        pairs = [features(np.ascontiguousarray(small[:, ::-1] if mirrored else small)) for mirrored in (False, True)]
        taps = taps or [[] for _ in pairs[0]]
        for k, tap in enumerate(taps):
            tap.append(np.stack([p[k] for p in pairs]))
        masks.append(mask)
    arrays = {key: np.stack(tap).astype(np.float16) for key, tap in zip(("s4", "s8", "s16", "s32"), taps)}
    return {**arrays, "masks": np.stack(masks)}


def _flows(root: Path, name: str, flow_of: Callable[[int, np.ndarray], np.ndarray], work_width: int):
    """(index, the frame's work size, its motion) for every frame of sequence `name`; frame 0 has no previous
    frame, so its motion is None. A DatasetError names the frame whose flow is not its work size."""
    for k, item, small, _ in _frames(root, name, work_width):
        h, w = small.shape[:2]
        if k == 0:
            yield k, (h, w), None
            continue
        flow = np.asarray(flow_of(k, small), np.float32)
        if flow.shape != (h, w, 2):
            raise DatasetError(item.image, f"flow {flow.shape[:2]} is not the work size {(h, w)}")
        yield k, (h, w), flow


def record_motion(root: Path, name: str, motion_map: MotionMap, flow_of: Callable[[int, np.ndarray], np.ndarray],
                  work_width: int) -> dict[str, np.ndarray]:
    """MP-Net's map of every frame of sequence `name`, as recorded and mirrored (frame 0: the still map).
    `flow_of(k, rgb)` is the motion at frame k's pixels (k >= 1; `rgb` the frame at the work width)."""
    motion, still = [], None
    for _, (h, w), flow in _flows(root, name, flow_of, work_width):
        if still is None:
            still = motion_map(np.zeros((h, w, 2), np.float32))
        if flow is None:
            motion.append(np.stack([still, still]))
            continue
        mirrored = np.ascontiguousarray(flow[:, ::-1] * np.array([-1.0, 1.0], np.float32))
        motion.append(np.stack([motion_map(flow), motion_map(mirrored)]))
    return {"motion": np.stack(motion)[:, :, None].astype(np.float16), "still": still[None].astype(np.float16)}


def record_residual(root: Path, name: str, flow_of: Callable[[int, np.ndarray], np.ndarray],
                    work_width: int) -> dict[str, np.ndarray]:
    """The camera-compensated residual map (residual.py) of every frame of sequence `name`, as recorded and
    mirrored (frame 0: zeros); `flow_of` as for record_motion."""
    maps = [np.zeros(stride4(size), np.float32) if flow is None else residual_map(flow)
            for _, size, flow in _flows(root, name, flow_of, work_width)]
    stack = np.stack(maps)
    return {"residual": np.stack([stack, stack[:, :, ::-1]], 1)[:, :, None].astype(np.float16)}


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Written to a temporary name and renamed, so an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def _read_arrays(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in keys}
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise DatasetError(path, f"unreadable visual-memory cache ({e}); delete it to rebuild") from None


def load_inputs(appearance: Path, motion: Path, name: str, residual: Path | None = None,
                saliency: Path | None = None, deep: bool = False) -> SequenceInputs:
    """A cached sequence from its files (the residual's, then the saliency's, when given, as further motion
    channels; the stride-32 features when `deep`); a DatasetError names the file when one is unreadable or
    they disagree."""
    taps = ("s4", "s8", "s16", "s32") if deep else ("s4", "s8", "s16")
    a = _read_arrays(appearance, (*taps, "masks"))
    m = _read_arrays(motion, ("motion", "still"))
    n = len(a["masks"])
    if any(len(a[t]) != n for t in taps) or a["s8"].shape[1] != 2:
        raise DatasetError(appearance, "inconsistent visual-memory cache (frame counts differ); delete it to rebuild")
    if len(m["motion"]) != n:
        raise DatasetError(motion, f"has {len(m['motion'])} frames but {appearance.name} has {n}; delete it to rebuild")
    maps, still = m["motion"], m["still"]
    if residual is not None:
        r = _read_arrays(residual, ("residual",))["residual"]
        if r.shape[:2] != maps.shape[:2] or r.shape[3:] != maps.shape[3:]:
            raise DatasetError(residual, f"maps {r.shape} do not match {motion.name}'s {maps.shape}; delete it to rebuild")
        maps = np.concatenate([maps, r], 2)
        still = np.concatenate([still, np.zeros_like(still)], 0)
    if saliency is not None:
        sal = _read_arrays(saliency, ("saliency",))["saliency"]
        if sal.shape[:2] != maps.shape[:2] or sal.shape[3:] != maps.shape[3:]:
            raise DatasetError(saliency, f"maps {sal.shape} do not match {motion.name}'s {maps.shape}; delete it to rebuild")
        maps = np.concatenate([maps, sal], 2)
    return SequenceInputs(name, a["s4"], a["s8"], a["s16"], maps, a["masks"], still, a.get("s32"))


@dataclass(frozen=True)
class RunAugment:
    """Seed 003's stop-and-go: how often a run's object stops, or is static at its start."""

    stop: float = 0.2
    static_start: float = 0.2
    mirror: float = 0.5

    def __post_init__(self) -> None:
        for name in ("stop", "static_start", "mirror"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.stop + self.static_start > 1.0:
            raise ValueError(f"stop + static_start must be <= 1, got {self.stop + self.static_start}")


class MemoryRuns(Dataset):
    """Item i: a run of `length` consecutive frames of one sequence, with its online and offline targets."""

    def __init__(self, sequences: list[SequenceInputs], length: int, items: int, seed: int = 0,
                 augment: RunAugment | None = RunAugment(), crop: tuple[int, int] = (0, 0)) -> None:
        usable = [s for s in sequences if len(s) >= length]
        if not usable:
            raise ValueError(f"no sequence has {length} frames")
        if any(crop):
            small = [s.name for s in usable if not (0 < crop[0] <= s.masks.shape[1] // 8 and 0 < crop[1] <= s.masks.shape[2] // 8)]
            if small:
                raise ValueError(f"crop {crop} (stride-8 cells) does not fit the maps of {small[:3]}")
        self.sequences, self.length, self.items, self.seed, self.augment = usable, length, items, seed, augment
        self.crop = crop
        self.starts = [(si, t) for si, s in enumerate(usable) for t in range(len(s) - length + 1)]

    def __len__(self) -> int:
        return self.items

    def __getitem__(self, index: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, index])
        si, t0 = self.starts[int(rng.integers(len(self.starts)))]
        seq, T = self.sequences[si], self.length
        frames = np.arange(t0, t0 + T)
        moving = np.ones(T, bool)  # False: the frame is held (no motion)
        online_visible = np.ones(T, bool)  # False: the object has not moved yet, nothing to report online
        aug = self.augment
        mirrored = bool(aug is not None and rng.random() < aug.mirror)
        if aug is not None:
            u = rng.random()
            if u < aug.stop:  # the object stops at k: frame k holds after it, with no motion
                k = int(rng.integers(0, T - 1))
                frames[k:] = frames[k]
                moving[k + 1:] = False
            elif u < aug.stop + aug.static_start:  # static up to k: frame k from the start; it moves after k
                k = int(rng.integers(1, T))
                frames[:k] = frames[k]
                moving[:k + 1] = False
                online_visible[:k + 1] = False
        side = int(mirrored)
        s4, s8, s16 = seq.s4[frames, side], seq.s8[frames, side], seq.s16[frames, side]
        motion = seq.motion[frames, side].astype(np.float32)
        motion[~moving, :len(seq.still)] = seq.still.astype(np.float32)
        masks = seq.masks[frames]
        if mirrored:
            masks = masks[:, :, ::-1]
        s32 = None if seq.s32 is None else seq.s32[frames, side]
        if any(self.crop):  # a window aligned to every stride (32 for a deep memory, 16, 8, 4, 1), inside the image
            (ch, cw), (h, w) = self.crop, masks.shape[1:]
            step = 2 if s32 is None else 4  # in stride-8 cells
            y, x = (step * int(rng.integers(0, (n // 8 - c) // step + 1)) for n, c in ((h, ch), (w, cw)))
            s8, s16 = s8[..., y:y + ch, x:x + cw], s16[..., y // 2:(y + ch + 1) // 2, x // 2:(x + cw + 1) // 2]
            if s32 is not None:  # the cells that cover the window, from its top-left one (VisualMemoryNet.inputs)
                s32 = s32[..., y // 4:(y + ch + 3) // 4, x // 4:(x + cw + 3) // 4]
            s4 = s4[..., 2 * y:2 * (y + ch), 2 * x:2 * (x + cw)]
            motion = motion[..., 2 * y:2 * (y + ch), 2 * x:2 * (x + cw)]
            masks = masks[:, 8 * y:8 * (y + ch), 8 * x:8 * (x + cw)]
        offline = torch.from_numpy(np.ascontiguousarray(masks)).float()[:, None]
        deep = {} if s32 is None else {"s32": torch.from_numpy(s32.astype(np.float32))}
        return {**deep, "s4": torch.from_numpy(s4.astype(np.float32)),
                "s8": torch.from_numpy(s8.astype(np.float32)),
                "s16": torch.from_numpy(s16.astype(np.float32)),
                "motion": torch.from_numpy(np.ascontiguousarray(motion)),
                "online_target": offline * torch.from_numpy(online_visible).float().view(T, 1, 1, 1),
                "offline_target": offline}


def collate_runs(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def whole_sequence(seq: SequenceInputs) -> dict[str, Any]:
    """A held-aside sequence as one run (as recorded): the held-out score runs it online and offline."""
    deep = {} if seq.s32 is None else {"s32": torch.from_numpy(seq.s32[:, 0].astype(np.float32))[None]}
    return {**deep, "s4": torch.from_numpy(seq.s4[:, 0].astype(np.float32))[None],
            "s8": torch.from_numpy(seq.s8[:, 0].astype(np.float32))[None],
            "s16": torch.from_numpy(seq.s16[:, 0].astype(np.float32))[None],
            "motion": torch.from_numpy(seq.motion[:, 0].astype(np.float32))[None],
            "masks": seq.masks, "name": seq.name}
