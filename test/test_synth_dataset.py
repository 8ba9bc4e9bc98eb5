"""Torch Datasets of synthetic clips and frame pairs: shapes, types, determinism, DataLoader workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from movseg_ros.synth import SynthConfigError, generate_clip, preset
from movseg_ros.synth.dataset import SynthClipDataset, SynthPairDataset, collate_pairs

CONFIG = preset("motion").replace(width=160, height=120, frames=3, n_moving=(1, 3), n_static=(1, 2))


def test_clip_items_are_tensors_of_the_clip() -> None:
    ds = SynthClipDataset(CONFIG, length=4, base_seed=10)
    item = ds[1]
    assert item["images"].shape == (3, 3, 120, 160) and item["images"].dtype == torch.float32
    assert 0.0 <= float(item["images"].min()) and float(item["images"].max()) <= 1.0
    assert item["flow"].shape == (2, 2, 120, 160) and item["flow"].dtype == torch.float32
    assert item["instances"].shape == (3, 120, 160) and item["instances"].dtype == torch.int64
    assert item["moving"].shape == (3, 3 + 2 + 1) and item["moving"].dtype == torch.bool
    clip = generate_clip(CONFIG, 11)
    assert item["seed"] == 11 and item["num_instances"] == clip.n_instances
    assert torch.equal(item["images"][0].permute(1, 2, 0), torch.from_numpy(clip.images[0]).float() / 255)
    assert torch.equal(item["flow"][1].permute(1, 2, 0), torch.from_numpy(clip.flow[1]))
    assert torch.equal(item["moving"][:, : clip.n_instances + 1], torch.from_numpy(clip.moving))
    assert not item["moving"][:, clip.n_instances + 1:].any()
    with pytest.raises(IndexError):
        ds[4]


def test_pair_items_hold_a_detection_target_for_the_first_frame() -> None:
    ds = SynthPairDataset(CONFIG, length=3, base_seed=5)
    item = ds[2]
    clip = generate_clip(CONFIG.replace(frames=2), 7)
    assert item["image"].shape == item["next_image"].shape == (3, 120, 160)
    assert torch.equal(item["flow"].permute(1, 2, 0), torch.from_numpy(clip.flow[0]))
    target = item["target"]
    n = len(target["ids"])
    assert n == len([i for i in clip.depth_order(0) if (clip.instances[0] == i).sum() >= 16]) and n > 0
    assert target["boxes"].shape == (n, 4) and target["masks"].shape == (n, 120, 160)
    assert target["masks"].dtype == torch.uint8 and target["labels"].dtype == torch.int64
    for k, oid in enumerate(target["ids"].tolist()):
        mask = clip.instances[0] == oid
        assert torch.equal(target["masks"][k].bool(), torch.from_numpy(mask))
        ys, xs = np.nonzero(mask)
        assert target["boxes"][k].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        assert bool(target["moving"][k]) == bool(clip.moving[0, oid])
        assert int(target["labels"][k]) == (1 if clip.moving[0, oid] else 2)
    only_moving = SynthPairDataset(CONFIG, length=3, base_seed=5, include_static=False)[2]["target"]
    assert only_moving["moving"].all() and (only_moving["labels"] == 1).all()
    assert len(only_moving["ids"]) == int(target["moving"].sum())


def test_a_pair_without_objects_has_an_empty_target() -> None:
    target = SynthPairDataset(CONFIG.replace(n_moving=(0, 0), n_static=(0, 0)), length=1)[0]["target"]
    assert target["boxes"].shape == (0, 4) and target["masks"].shape == (0, 120, 160)
    assert target["labels"].dtype == torch.int64 and len(target["ids"]) == 0


def test_items_are_the_same_with_or_without_workers() -> None:
    ds = SynthPairDataset(CONFIG, length=4, base_seed=3)
    plain = [ds[i] for i in range(4)]
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_pairs)
    batches = list(loader)
    assert [s for b in batches for s in b["seed"].tolist()] == [3, 4, 5, 6]
    for b, batch in enumerate(batches):
        for j in range(2):
            item = plain[2 * b + j]
            assert torch.equal(batch["image"][j], item["image"]) and torch.equal(batch["flow"][j], item["flow"])
            assert torch.equal(batch["targets"][j]["masks"], item["target"]["masks"])
    assert not torch.equal(plain[0]["image"], plain[1]["image"])


def test_clip_batches_collate_with_the_default_collate() -> None:
    batch = next(iter(DataLoader(SynthClipDataset(CONFIG, length=2), batch_size=2)))
    assert batch["images"].shape == (2, 3, 3, 120, 160) and batch["moving"].shape == (2, 3, 6)


@pytest.mark.parametrize("length, seed", [(0, 0), (3, -1), (2.5, 0)])
def test_bad_dataset_sizes_are_refused(length, seed) -> None:
    with pytest.raises(SynthConfigError):
        SynthClipDataset(CONFIG, length=length, base_seed=seed)
