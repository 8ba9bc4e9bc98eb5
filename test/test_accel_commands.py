"""`movseg export flow` (RAFT, tiny frames, exported-graph artifact) and `movseg bench stages`, run through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from movseg_ros.cli import main
from movseg_ros.learned_flow import build_raft


@pytest.fixture(scope="module")
def raft_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real raft_small state dict (random initial weights: nothing is downloaded)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "raft_small.pt"
    torch.save(build_raft("raft_small").state_dict(), path)
    return path


def _export(weights: Path, cache: Path, out: Path, *extra: str) -> list[str]:
    return ["export", "flow", "--weights", str(weights), "--width", "120", "--height", "100", "--iterations", "1",
            "--accelerator", "eager", "--device", "cpu", "--cache-dir", str(cache), "--json", str(out), *extra]


def test_export_builds_then_hits_the_cache(raft_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cache = tmp_path / "engines"
    assert main(_export(raft_weights, cache, tmp_path / "a.json")) == 0
    text = capsys.readouterr().out
    assert "accelerator: eager (requested eager; exported graph built and cached)" in text
    assert "cache: miss, built: " in text and "1x3x128x128" in text  # padded to RAFT's minimum side
    first = json.loads((tmp_path / "a.json").read_text())
    assert first["cache_hit"] is False and Path(first["cache_path"]).is_file()
    assert first["input_shapes"] == [[1, 3, 128, 128], [1, 3, 128, 128]]
    assert main(_export(raft_weights, cache, tmp_path / "b.json")) == 0
    assert "cache: hit: " in capsys.readouterr().out
    second = json.loads((tmp_path / "b.json").read_text())
    assert second["cache_hit"] is True and second["cache_key"] == first["cache_key"]
    assert main(_export(raft_weights, cache, tmp_path / "c.json", "--accelerator", "tensorrt",
                        "--precision", "fp16")) == 0
    out = capsys.readouterr().out
    assert "tensorrt unavailable: needs a CUDA device" in out and "fp16 needs CUDA" in out


def test_export_bad_input_is_a_clear_error(raft_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "nope.pt"
    assert main(_export(missing, tmp_path, tmp_path / "x.json")) == 2
    assert f"movseg export: error: weights {missing}: no such file" in capsys.readouterr().err
    broken = tmp_path / "broken.pt"
    broken.write_bytes(raft_weights.read_bytes()[:1000])
    assert main(_export(broken, tmp_path, tmp_path / "x.json")) == 2
    assert str(broken) in capsys.readouterr().err
    assert main(_export(raft_weights, tmp_path, tmp_path / "x.json", "--width", "0")) == 2
    assert "--width/--height" in capsys.readouterr().err
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    assert main(_export(raft_weights, blocker / "engines", tmp_path / "x.json")) == 2
    assert f"movseg export: error: engine cache {blocker}" in capsys.readouterr().err


def test_bench_stages_prints_a_table_and_json(raft_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "stages.json"
    argv = ["bench", "stages", "--width", "96", "--height", "64", "--iterations", "2", "--warmup", "1",
            "--device", "cpu", "--pipelines", "geometric", "raft", "--accelerators", "tensorrt", "eager",
            "--raft-iterations", "1",
            "--weights", str(raft_weights), "--threads", "1", "--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    for stage in ("flow", "ego_motion", "segmentation", "tracking", "prepare", "network", "finish", "total"):
        assert f" {stage} " in text
    assert "unavailable: tensorrt unavailable: needs a CUDA device" in text
    result = json.loads(out.read_text())
    geometric, trt, eager = result["runs"]
    assert geometric["pipeline"] == "geometric" and geometric["frames"] == 2
    stages = geometric["stages"]
    assert stages["total"]["p50_ms"] >= stages["flow"]["p50_ms"] > 0
    assert trt["status"] == "unavailable" and "torch_tensorrt" in trt["reason"]
    assert eager["status"] == "ran" and eager["frames"] == 2 and eager["stages"]["network"]["p99_ms"] > 0
    assert eager["peak_memory_mib"] >= 0 and eager["memory_kind"] == "cpu rss"


def test_bench_stages_bad_size_is_a_clear_error(capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "stages", "--width", "8", "--pipelines", "geometric"]) == 2
    assert "movseg bench: error: --width/--height" in capsys.readouterr().err
