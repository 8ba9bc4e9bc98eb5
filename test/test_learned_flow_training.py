"""`movseg train flow` on a tiny config: files written, exact resume, same seed same loss, bad configs, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from learned_flow_helpers import REPO

from movseg_ros.cli import main
from movseg_ros.model_files import load_checkpoint

TINY = REPO / "config" / "train_flow_tiny.yaml"


def _train(out: Path, *extra: str) -> int:
    return main(["train", "flow", "--config", str(TINY), "--out-dir", str(out), "--set", f"export={out / 'w.pt'}",
                 *extra])


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in _records(out) if "loss" in r}


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    """The tiny config run straight through (5 steps)."""
    out = tmp_path_factory.mktemp("full")
    assert _train(out) == 0
    return out


def test_a_run_writes_weights_metrics_plot_and_checkpoint(full_run: Path) -> None:
    recs = [r for r in _records(full_run) if "loss" in r]
    assert [r["step"] for r in recs] == [1, 2, 3, 4, 5]
    assert all(set(r) >= {"step", "loss", "epe", "lr", "seconds"} for r in recs)
    assert any("val_epe" in r for r in _records(full_run))
    assert (full_run / "metrics.png").stat().st_size > 1000
    state = torch.load(full_run / "checkpoint_last.pt", weights_only=True)
    assert state["step"] == 5 and {"model", "optimizer", "scheduler", "rng", "config"} <= set(state)
    ck = load_checkpoint(full_run / "w.pt", "raft_small")
    assert ck["arch"] == "raft_small"
    meta = ck["meta"]
    assert meta["iterations"] == 5 and meta["data"]["preset"] == "motion" and "train flow" in meta["command"]
    assert meta["data"]["heldout_seeds"] == [100000, 100002]


def test_resume_continues_exactly(full_run: Path, tmp_path: Path) -> None:
    assert _train(tmp_path, "--set", "stop_after=3") == 0
    first = _losses(tmp_path)
    assert sorted(first) == [1, 2, 3]
    assert torch.load(tmp_path / "checkpoint_last.pt", weights_only=True)["step"] == 3
    assert _train(tmp_path, "--resume") == 0
    resumed = _losses(tmp_path)
    assert sorted(resumed) == [1, 2, 3, 4, 5]  # the step counter and the log go on
    full = _losses(full_run)
    assert resumed[1] == full[1]  # same seed, same loss at step 1
    for step in (4, 5):  # the resumed steps are the uninterrupted run's
        assert resumed[step] == pytest.approx(full[step], rel=1e-5), step
    assert _train(tmp_path, "--resume") == 2  # nothing left to do is an error, not a silent no-op
    assert _train(tmp_path, "--resume", "--iterations", "9") == 2  # another schedule cannot be resumed


def test_bad_configs_are_clear_errors(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("arch: raft_small\nlearning_rate: 0.1\n")
    assert main(["train", "flow", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "movseg train: error:" in err and str(bad) in err and "learning_rate" in err
    assert main(["train", "flow", "--config", str(TINY), "--set", "crop=[64, 48]"]) == 2
    assert "128" in capsys.readouterr().err
    assert main(["train", "flow", "--config", str(TINY), "--set", "heldout_seeds=[500, 600]"]) == 2
    assert "overlaps" in capsys.readouterr().err
    assert main(["train", "flow", "--config", str(TINY), "--set", "synth={warp_speed: 3}"]) == 2
    assert "warp_speed" in capsys.readouterr().err
    assert main(["train", "flow", "--config", str(tmp_path / "none.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_ddp_two_processes_on_cpu(tmp_path: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "movseg_ros.cli", "train", "flow", "--config", str(TINY), "--out-dir", str(tmp_path),
           "--iterations", "2", "--set", f"export={tmp_path / 'w.pt'}"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = [r for r in _records(tmp_path) if "loss" in r]
    assert [r["step"] for r in recs] == [1, 2]  # one writer: rank 0
    meta = load_checkpoint(tmp_path / "w.pt", "raft_small")["meta"]
    assert meta["world_size"] == 2
