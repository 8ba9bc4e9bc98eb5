"""RaftFlow as a FlowEstimator: shapes, padding, determinism, the replaceable forward, shipped weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from learned_flow_helpers import SHIPPED, plain_state_dict_file

from movseg_ros.learned_flow.evaluate import synth_pairs
from movseg_ros.learned_flow.raft import RaftFlow, RaftFlowConfig, RaftFlowError
from movseg_ros.model_files import ModelFileError
from movseg_ros.synth import preset


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return plain_state_dict_file(tmp_path_factory.mktemp("raft") / "raft_small_untrained.pth", seed=3)


@pytest.fixture(scope="module")
def odd_pair() -> tuple[np.ndarray, np.ndarray]:
    (p,) = synth_pairs(preset("motion").replace(width=133, height=101), [100000])
    return p.image1, p.image2


def test_flow_has_the_input_size_and_is_deterministic(weights: Path, odd_pair) -> None:
    a, b = odd_pair
    raft = RaftFlow(RaftFlowConfig(weights=str(weights), iterations=2))
    assert raft.name == "raft"
    assert raft.input_shape(101, 133) == (128, 136)  # padded to /8 and to RAFT's 128-px minimum
    f1 = raft(a, b)
    assert f1.shape == (101, 133, 2) and f1.dtype == np.float32
    assert np.isfinite(f1).all()
    np.testing.assert_array_equal(f1, raft(a, b))


def test_scale_and_grey_input_keep_the_size(weights: Path, odd_pair) -> None:
    a, b = odd_pair
    raft = RaftFlow(RaftFlowConfig(weights=str(weights), iterations=1, scale=1.5))
    assert raft(a, b).shape == (101, 133, 2)
    grey = RaftFlow(RaftFlowConfig(weights=str(weights), iterations=1))
    assert grey(a[..., 0], b[..., 0]).shape == (101, 133, 2)


def test_set_forward_replaces_the_network(weights: Path, odd_pair) -> None:
    a, b = odd_pair
    raft = RaftFlow(RaftFlowConfig(weights=str(weights), iterations=1))
    seen = []

    def fake(img1: torch.Tensor, img2: torch.Tensor) -> torch.Tensor:
        seen.append((tuple(img1.shape), float(img1.min()), float(img1.max())))
        out = torch.zeros(1, 2, *img1.shape[2:])
        out[:, 0] = 1.5
        out[:, 1] = -0.5
        return out

    eager = raft(a, b)
    raft.set_forward(fake)
    f = raft(a, b)
    assert seen == [((1, 3, 128, 136), pytest.approx(seen[0][1]), pytest.approx(seen[0][2]))]
    assert -1.0 <= seen[0][1] < seen[0][2] <= 1.0  # the module's inputs are in [-1, 1]
    assert np.all(f[..., 0] == 1.5) and np.all(f[..., 1] == -0.5)
    raft.set_forward(None)
    np.testing.assert_array_equal(raft(a, b), eager)


def test_bad_settings_and_inputs_are_clear(weights: Path, tmp_path: Path) -> None:
    with pytest.raises(RaftFlowError, match="weights file is required"):
        RaftFlowConfig()
    with pytest.raises(RaftFlowError, match="arch"):
        RaftFlowConfig(arch="raft_tiny", weights=str(weights))
    with pytest.raises(RaftFlowError, match="iterations"):
        RaftFlowConfig(weights=str(weights), iterations=0)
    with pytest.raises(ModelFileError, match="no such file"):
        RaftFlow(RaftFlowConfig(weights=str(tmp_path / "missing.pt")))
    raft = RaftFlow(RaftFlowConfig(weights=str(weights), iterations=1))
    with pytest.raises(RaftFlowError, match="differ in shape"):
        raft(np.zeros((64, 64, 3), np.uint8), np.zeros((64, 80, 3), np.uint8))


@pytest.mark.skipif(not SHIPPED.exists(), reason=f"no shipped weights at {SHIPPED}")
def test_shipped_weights_beat_zero_flow_on_held_out_pairs() -> None:
    from movseg_ros.synth.textures import resolve_source

    if resolve_source("auto", None)[0] != "davis":
        pytest.skip("the shipped weights were trained and scored on DAVIS-textured clips; no DAVIS 2016 at "
                    "movseg_ros.datasets.davis.default_root() (with scikit-image textures they barely beat zero flow)")
    config = preset("motion").replace(width=256, height=192, texture_source="davis")
    pairs = synth_pairs(config, [100046, 100047, 100048, 100049])
    raft = RaftFlow(RaftFlowConfig(weights=str(SHIPPED), iterations=6))
    raft_epe = np.mean([np.linalg.norm(raft(p.image1, p.image2) - p.flow, axis=2).mean() for p in pairs])
    zero_epe = np.mean([np.linalg.norm(p.flow, axis=2).mean() for p in pairs])
    print(f"held-out EPE: raft {raft_epe:.3f}, zero flow {zero_epe:.3f}")
    assert raft_epe < 0.85 * zero_epe, (raft_epe, zero_epe)
