"""STEm-Seg training clips: generator clips, clips animated from single images, DAVIS-layout video clips, mixing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from movseg_ros.datasets import DatasetError
from movseg_ros.datasets.label_files import davis_palette
from movseg_ros.stem_seg.data import (
    AnimateConfig,
    AnimatedImageClips,
    CocoImages,
    MixedClips,
    SynthClips,
    SynthImages,
    VideoClips,
    collate_clips,
    line_blur,
)
from movseg_ros.synth.clip import generate_clip
from movseg_ros.synth.coco import write_coco
from movseg_ros.synth.config import preset

W, H, T = 96, 64, 3
SIZE = (W, H)
STILL = AnimateConfig(blur_probability=0.0)
BG, RED, GREEN = (40, 60, 200), (210, 40, 30), (40, 190, 60)


def synth_config():
    return preset("stemseg").replace(width=W, height=H, frames=T, texture_source="skimage")


def check_item(item: dict, source: str) -> None:
    assert item["images"].shape == (T, 3, H, W) and item["images"].dtype == torch.float32
    assert 0.0 <= float(item["images"].min()) and float(item["images"].max()) <= 1.0
    assert item["instances"].shape == (T, H, W) and item["instances"].dtype == torch.int64
    assert item["ignore"].shape == (T, H, W) and item["ignore"].dtype == torch.bool
    assert item["source"] == source and isinstance(item["origin"], str)
    assert not item["instances"][item["ignore"]].any()  # ignored pixels are never an instance


def same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in ("images", "instances", "ignore")) and a["source"] == b["source"]


class FlatShapes:
    """Single images: a red rectangle (id 1) and a green disc (id 2) on a flat blue background."""

    name = "flat"

    def __init__(self, n: int = 3, size: tuple[int, int] = SIZE) -> None:
        self.n, self.size = n, size

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        w, h = self.size
        ids = np.zeros((h, w), np.int32)
        ids[h // 4: h // 2, w // 5 + 4 * index: w // 2 + 4 * index] = 1
        cv2.circle(ids, (3 * w // 4, 2 * h // 3), h // 6, 2, -1)
        image = np.array([BG, RED, GREEN], np.uint8)[ids]
        return image, ids


def nearest_colour(images: torch.Tensor) -> np.ndarray:
    """(T,3,H,W) [0,1] -> (T,H,W) index of the nearest of BG, RED, GREEN (black pixels: -1)."""
    rgb = images.permute(0, 2, 3, 1).numpy() * 255.0
    d = np.stack([np.linalg.norm(rgb - np.array(c), axis=-1) for c in (BG, RED, GREEN)], -1)
    out = d.argmin(-1)
    out[rgb.max(-1) < 1.0] = -1
    return out


def test_synth_clips_label_moving_objects_or_all() -> None:
    config = synth_config()
    moving, every = SynthClips(config, 4, base_seed=0), SynthClips(config, 4, base_seed=0, instances="all")
    hid_static = 0
    for i in range(4):
        item = moving[i]
        check_item(item, "synth")
        assert not item["ignore"].any()
        clip = generate_clip(config, i)
        movers = set(np.flatnonzero(clip.moving.any(0)).tolist()) - {0}
        ids = set(item["instances"].unique().tolist()) - {0}
        assert ids <= movers and ids
        static_visible = set(np.unique(clip.instances).tolist()) & set(clip.static_ids)
        hid_static += len(static_visible)
        assert not ids & set(clip.static_ids)
        np.testing.assert_array_equal(every[i]["instances"].numpy(), clip.instances)
        np.testing.assert_array_equal(item["images"].numpy(), every[i]["images"].numpy())
    assert hid_static > 0  # the check above saw static objects turned into background
    with pytest.raises(ValueError, match="instances 'still' is not one of moving, all"):
        SynthClips(config, 4, instances="still")


def test_animated_clips_move_and_masks_follow_the_colour() -> None:
    data = AnimatedImageClips(FlatShapes(), T, SIZE, length=6, base_seed=3, config=STILL)
    for i in range(len(data)):
        item = data[i]
        check_item(item, "animated:flat")
        colour = nearest_colour(item["images"])
        ids = item["instances"].numpy()
        for t in range(T):
            assert not np.array_equal(item["images"][t].numpy(), item["images"][(t + 1) % T].numpy())
            for oid in (1, 2):
                mask = ids[t] == oid
                if mask.sum() < 20:
                    continue
                painted = colour[t] == oid
                iou = (mask & painted).sum() / (mask | painted).sum()
                assert iou > 0.85, (i, t, oid, iou)
                inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
                assert (colour[t][inner] == oid).all()
        centres = [np.argwhere(ids[t] == 1).mean(0) for t in range(T) if (ids[t] == 1).sum() > 20]
        assert len(centres) >= 2 and max(np.abs(c - centres[0]).max() for c in centres[1:]) > 0.5


def test_animated_ignore_is_the_brought_in_border() -> None:
    shrink = AnimateConfig(rotation_deg=0, translation=0, scale=(0.8, 0.8), hue_deg=0, saturation=0,
                           blur_probability=0)
    item = AnimatedImageClips(FlatShapes(), 2, SIZE, 1, config=shrink, fit="stretch")[0]
    ignore = item["ignore"][0].numpy()
    bw, bh = round(0.1 * W), round(0.1 * H)  # 0.8x about the centre leaves 10% of each side uncovered
    assert ignore[:, : bw - 1].all() and ignore[:, W - bw + 1:].all()
    assert ignore[: bh - 1].all() and ignore[H - bh + 1:].all()
    assert not ignore[bh + 1: H - bh - 1, bw + 1: W - bw - 1].any()
    data = AnimatedImageClips(FlatShapes(), T, SIZE, 6, base_seed=1, config=STILL)
    brought_in = 0
    for i in range(len(data)):
        item = data[i]
        black = item["images"].amax(1) == 0
        assert torch.equal(black, item["ignore"])  # the source has no black pixel: black = from outside
        brought_in += int(item["ignore"].sum())
    assert brought_in > 0


def test_line_blur_spreads_a_point_along_its_angle() -> None:
    dot = np.zeros((21, 21, 3), np.uint8)
    dot[10, 10] = 210
    flat = line_blur(dot, 7, 0.0)
    assert flat[10, 7:14, 0].min() > 0 and flat[:9, :, 0].max() == 0 and flat[12:, :, 0].max() == 0
    upright = line_blur(dot, 7, 90.0)
    assert upright[7:14, 10, 0].min() > 0 and upright[:, :9, 0].max() == 0
    assert abs(int(flat[..., 0].sum()) - 210) <= 7


def test_coco_and_synth_image_sources(tmp_path: Path) -> None:
    config = synth_config().replace(object_area=(0.05, 0.12))
    annotations = write_coco(config, tmp_path / "coco", images=2)
    coco = CocoImages.open(annotations, tmp_path / "coco" / "images")
    image, ids = coco[0]
    assert image.shape == (H, W, 3) and image.dtype == np.uint8 and ids.shape == (H, W)
    masks = coco.coco[0]["target"]["masks"].numpy().astype(bool)
    assert len(masks) == ids.max() and all((ids[m] == k + 1).mean() > 0.9 for k, m in enumerate(masks))
    synth = SynthImages(config, 2, base_seed=0)
    _, synth_ids = synth[0]
    np.testing.assert_array_equal(synth_ids, generate_clip(config.replace(frames=2), 0).instances[0])
    for source, name in ((coco, "animated:coco"), (synth, "animated:synth")):
        item = AnimatedImageClips(source, T, SIZE, 2)[1]
        check_item(item, name)
        assert item["instances"].any()


def write_davis(root: Path, name: str, frames: int, palette: bool) -> None:
    """Flat DAVIS layout at W x H: a red box (id 1) moving right, a still green box (id 2, 2017 only) with a
    void (255) line above it; PNG frames so images compare exactly."""
    for i in range(frames):
        ids = np.zeros((H, W), np.uint8)
        ids[10:30, 5 + 6 * i: 25 + 6 * i] = 1
        if palette:
            ids[40:56, 60:80] = 2
            ids[38, 58:82] = 255
        image = np.array([BG, RED, GREEN], np.uint8)[np.where(ids == 255, 0, ids)]
        (root / name / "JPEGImages").mkdir(parents=True, exist_ok=True)
        (root / name / "Annotations").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name / "JPEGImages" / f"{i:05d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        path = root / name / "Annotations" / f"{i:05d}.png"
        if palette:
            png = Image.fromarray(ids)
            png.putpalette(davis_palette().tobytes())
            png.save(path)
        else:
            cv2.imwrite(str(path), (ids == 1).astype(np.uint8) * 255)


def test_video_clips_flip_images_and_masks_together(tmp_path: Path) -> None:
    write_davis(tmp_path, "boxes", 6, palette=True)
    write_davis(tmp_path, "short", 2, palette=False)
    data = VideoClips(tmp_path, T, SIZE, length=16, base_seed=5)
    assert sorted(s.name for s in data.sequences) == ["boxes", "short"]
    flips = set()
    for i in range(len(data)):
        item = data[i]
        check_item(item, "video")
        seq, chosen, flip, _ = data.pick(i)
        flips.add(flip)
        mirror = (lambda a: a[:, ::-1]) if flip else (lambda a: a)
        for t, f in enumerate(chosen):
            image = (item["images"][t].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            np.testing.assert_array_equal(image, mirror(seq.image(f)))
            np.testing.assert_array_equal(item["instances"][t].numpy(), mirror(seq.labels(f)))
            void = seq.ignore(f)
            expected = mirror(void) if void is not None else np.zeros((H, W), bool)
            np.testing.assert_array_equal(item["ignore"][t].numpy(), expected)
        colour = nearest_colour(item["images"])
        assert (colour[item["instances"] == 1] == 1).all()  # id 1 is the red box in every frame
        xs = [np.argwhere(item["instances"][t].numpy() == 1)[:, 1].mean() for t in range(T)]
        moved = np.diff(xs) if seq.name == "boxes" else np.diff(xs[:2])
        assert (moved < 0).all() if flip else (moved > 0).all()  # moves right, left when flipped
        if seq.name == "short":
            assert chosen == [0, 1, 1]  # padded by repeating the last annotated frame
        else:
            assert set(item["instances"].unique().tolist()) == {0, 1, 2}
            assert chosen == list(range(chosen[0], chosen[0] + T))
    assert flips == {True, False}
    skipping = VideoClips(tmp_path, T, SIZE, 4, short="skip")
    assert [s.name for s in skipping.sequences] == ["boxes"]


def test_video_clips_errors_name_the_folder(tmp_path: Path) -> None:
    write_davis(tmp_path, "short", 2, palette=False)
    for p in (tmp_path / "short" / "Annotations").iterdir():
        p.unlink()
    with pytest.raises(DatasetError, match=f"{tmp_path}.*no sequence with annotations"):
        VideoClips(tmp_path, T, SIZE, 4)
    write_davis(tmp_path, "short", 2, palette=False)
    with pytest.raises(DatasetError, match=f"{tmp_path}.*at least 3 annotated frames"):
        VideoClips(tmp_path, T, SIZE, 4, short="skip")
    with pytest.raises(ValueError, match="size must be"):
        VideoClips(tmp_path, T, (W,), 4)


def test_items_are_pure_functions_of_seed_and_index(tmp_path: Path) -> None:
    write_davis(tmp_path / "davis", "boxes", 5, palette=True)
    sources = [
        (SynthClips(synth_config(), 3, base_seed=2), 1.0),
        (AnimatedImageClips(SynthImages(synth_config(), 3), T, SIZE, 3, base_seed=2), 1.0),
        (VideoClips(tmp_path / "davis", T, SIZE, 3, base_seed=2), 1.0),
    ]
    for data, _ in sources:
        assert same(data[1], data[1])
    mixed = MixedClips(sources, length=6, base_seed=9)
    assert same(mixed[2], mixed[2])
    assert {mixed.source_of(i) for i in range(6)} == {0, 1, 2}  # the loaders below see every kind of clip
    batches = [list(DataLoader(mixed, batch_size=2, num_workers=n, collate_fn=collate_clips)) for n in (0, 2)]
    for a, b in zip(*batches):
        assert a["images"].shape == (2, T, 3, H, W) and a["instances"].shape == (2, T, H, W)
        assert a["ignore"].shape == (2, T, H, W)
        assert same(a, b) and a["origin"] == b["origin"]
    assert not same(mixed[0], mixed[1])


def test_mixed_clips_pick_by_weight_and_reject_bad_sources() -> None:
    a = SynthClips(synth_config(), 5, base_seed=0, name="a")
    b = SynthClips(synth_config(), 5, base_seed=100, name="b")
    mixed = MixedClips([(a, 0.9), (b, 0.1)], length=200, base_seed=1)
    counts = mixed.counts()
    assert sum(counts) == 200 and 165 <= counts[0] <= 195, counts
    i = next(i for i in range(200) if mixed.source_of(i) == 1)
    assert mixed[i]["source"] == "b"
    with pytest.raises(ValueError, match="at least one"):
        MixedClips([], 10)
    for weight in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=r"source 1 \(b\): weight must be a finite number > 0"):
            MixedClips([(a, 1.0), (b, weight)], 10)
    other = SynthClips(synth_config().replace(width=64), 5)
    with pytest.raises(ValueError, match="sources disagree on size"):
        MixedClips([(a, 1.0), (other, 1.0)], 10)
    with pytest.raises(ValueError, match="cannot collate an empty batch"):
        collate_clips([])
