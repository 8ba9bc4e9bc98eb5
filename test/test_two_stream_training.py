"""`movseg train motion | appearance | joint` on tiny configs: files, exact resume, freezing, bad configs, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from two_stream_helpers import REPO, train_stage

from movseg_ros.model_files import ModelFileError, load_checkpoint
from movseg_ros.training.common import TrainConfigError, load_train_config
from movseg_ros.training.joint import JointTrainConfig
from movseg_ros.two_stream.weights import load_model


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_each_stage_writes_weights_metrics_plot_and_checkpoint(tiny_two_stream) -> None:
    for stage, kind, path in (("motion", "motion", tiny_two_stream.motion),
                              ("appearance", "appearance", tiny_two_stream.appearance),
                              ("joint", "two_stream", tiny_two_stream.joint)):
        out = path.parent
        recs = [r for r in _records(out) if "loss" in r]
        assert [r["step"] for r in recs] == [1, 2, 3], stage
        assert all(set(r) >= {"loss", "loss_classifier", "loss_mask", "loss_objectness", "lr"} for r in recs)
        assert all(torch.isfinite(torch.tensor(r["loss"])) for r in recs)
        assert (out / "metrics.png").stat().st_size > 1000
        model, meta = load_model(path, kind, min_size=64)
        assert meta["stage"] == stage and meta["iterations"] == 3 and f"train {stage}" in meta["command"]
        assert meta["stored_dtype"] == "float16"
        assert not model.training
    motion_meta = load_checkpoint(tiny_two_stream.motion, "motion_mask_rcnn")["meta"]
    assert motion_meta["flow"]["truth_steps"] == 1  # half of 3 steps on exact flow, the rest on DIS flow
    assert any("val_seg_map50" in r for r in _records(tiny_two_stream.motion.parent))
    appearance_meta = load_checkpoint(tiny_two_stream.appearance, "appearance_mask_rcnn")["meta"]
    assert appearance_meta["objectness_data"]["coco_annotations"].endswith("annotations.json")


def test_joint_starts_from_the_streams_and_keeps_frozen_parts(tiny_two_stream) -> None:
    joint, meta = load_model(tiny_two_stream.joint, "two_stream", min_size=64)
    motion, _ = load_model(tiny_two_stream.motion, "motion", min_size=64)
    appearance, _ = load_model(tiny_two_stream.appearance, "appearance", min_size=64)
    assert meta["frozen"] == {"appearance": True, "motion": True, "mask": True}

    def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
        sa, sb = a.state_dict(), b.state_dict()
        return sa.keys() == sb.keys() and all(torch.equal(sa[k].half(), sb[k].half()) for k in sa)

    assert same(joint.motion_backbone, motion.backbone)
    assert same(joint.appearance_backbone, appearance.backbone)
    assert same(joint.roi_heads.mask_head, appearance.roi_heads.mask_head)
    assert same(joint.static_roi_heads, appearance.roi_heads) and same(joint.static_rpn, appearance.rpn)
    # what is not frozen trained: the RPN and the box head moved away from the objectness model's
    assert not same(joint.rpn, appearance.rpn)
    assert not same(joint.roi_heads.box_head, appearance.roi_heads.box_head)


def test_unfrozen_joint_training_changes_the_backbones(tiny_two_stream, tmp_path: Path) -> None:
    assert train_stage("joint", tmp_path, "--set", f"motion_weights={tiny_two_stream.motion}",
                       "--set", f"appearance_weights={tiny_two_stream.appearance}", "--set", "freeze_motion=false",
                       "--set", "freeze_appearance=false", "--set", "iterations=1", "--set", "val_images=0") == 0
    joint, _ = load_model(tmp_path / "w.pt", "two_stream", min_size=64)
    motion, _ = load_model(tiny_two_stream.motion, "motion", min_size=64)
    a, b = joint.motion_backbone.state_dict(), motion.backbone.state_dict()
    assert any(not torch.equal(a[k].half(), b[k].half()) for k in a)


def test_resume_continues_exactly(tmp_path: Path) -> None:
    full, split = tmp_path / "full", tmp_path / "split"
    assert train_stage("motion", full, "--set", "val_images=0") == 0
    assert train_stage("motion", split, "--set", "val_images=0", "--set", "stop_after=2") == 0
    assert train_stage("motion", split, "--set", "val_images=0", "--resume") == 0
    losses = lambda out: {r["step"]: r["loss"] for r in _records(out) if "loss" in r}  # noqa: E731
    assert sorted(losses(split)) == [1, 2, 3]
    for step, loss in losses(full).items():
        assert losses(split)[step] == pytest.approx(loss, rel=1e-5, abs=1e-6)
    a = load_checkpoint(full / "w.pt", "motion_mask_rcnn")["state_dict"]
    b = load_checkpoint(split / "w.pt", "motion_mask_rcnn")["state_dict"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-3) for k in a)


@pytest.mark.parametrize("stage,overrides,words", [
    ("motion", ["nonsense=1"], "unknown key"),
    ("motion", ["arch={backbone: vgg}"], "backbone 'vgg'"),
    ("motion", ["truth_flow_iterations=-5"], "truth_flow_iterations"),
    ("appearance", ["data=coco"], "coco_annotations"),
    ("appearance", ["init_coco_weights=x.pth"], "paper's architecture"),
    ("joint", ["freeze_appearance=false", "freeze_mask=false"], "freeze_motion needs motion_weights"),
    ("joint", [], "needs appearance_weights"),
    ("joint", ["flow_source=raft"], "flow_source"),
    ("joint", ["detector_from=optical"], "detector_from"),
    ("motion", ["arch={motion_input: depth}"], "motion_input 'depth'"),
    ("motion", ["heldout_seeds=[10, 20]"], "overlaps train_seeds"),
])
def test_bad_configs_are_named(stage, overrides, words, tmp_path: Path, capsys) -> None:
    args = [a for o in overrides for a in ("--set", o)]
    assert train_stage(stage, tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert "movseg train: error:" in err and words in err


def test_joint_refuses_stream_weights_of_another_architecture(tiny_two_stream, tmp_path: Path, capsys) -> None:
    assert train_stage("joint", tmp_path, "--set", f"motion_weights={tiny_two_stream.motion}",
                       "--set", "arch={fpn_channels: 64}", "--set", "freeze_appearance=false",
                       "--set", "freeze_mask=false") == 2
    err = capsys.readouterr().err
    assert str(tiny_two_stream.motion) in err and "architecture" in err
    assert train_stage("joint", tmp_path, "--set", f"motion_weights={tiny_two_stream.appearance}",
                       "--set", f"appearance_weights={tiny_two_stream.appearance}") == 2
    assert "expected 'motion_mask_rcnn'" in capsys.readouterr().err


def test_ddp_on_two_cpu_processes(tmp_path: Path) -> None:
    """torchrun with 2 CPU processes (gloo): one set of weights, each step's loss averaged over both."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "movseg_ros.cli", "train", "motion", "--config", str(REPO / "config" / "train_motion_tiny.yaml"),
           "--out-dir", str(tmp_path), "--set", f"export={tmp_path / 'w.pt'}", "--set", "iterations=2",
           "--set", "val_images=0"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    meta = load_checkpoint(tmp_path / "w.pt", "motion_mask_rcnn")["meta"]
    assert meta["world_size"] == 2 and meta["iterations"] == 2
    assert [r["step"] for r in _records(tmp_path) if "loss" in r] == [1, 2]


def test_loader_errors_name_the_file(tiny_two_stream, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path / "missing.pt", "two_stream")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(tiny_two_stream.joint.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="corrupt or truncated") as e:
        load_model(corrupt, "two_stream")
    assert str(corrupt) in str(e.value)
    with pytest.raises(ModelFileError, match="architecture 'motion_mask_rcnn', expected 'two_stream_mask_rcnn'"):
        load_model(tiny_two_stream.motion, "two_stream")
    data = torch.load(tiny_two_stream.motion, weights_only=True)
    data["meta"]["arch_settings"]["fpn_channels"] = 64  # the record says 64-wide, the tensors are 128-wide
    wrong = tmp_path / "wrong_shapes.pt"
    torch.save(data, wrong)
    with pytest.raises(ModelFileError, match="shape"):
        load_model(wrong, "motion")
    torch.save(data["state_dict"], tmp_path / "plain.pt")
    with pytest.raises(ModelFileError, match="no architecture record"):
        load_model(tmp_path / "plain.pt", "motion")


def test_config_files_load() -> None:
    for name in ("train_motion.yaml", "train_motion_tiny.yaml", "train_joint_tiny.yaml"):
        cls = JointTrainConfig if "joint" in name else __import__("movseg_ros.training.motion", fromlist=["CONFIG"]).CONFIG
        load_train_config(cls, REPO / "config" / name)
    with pytest.raises(TrainConfigError):
        load_train_config(JointTrainConfig, REPO / "config" / "train_joint_tiny.yaml", ["batch_size=0"])
