"""`movseg bench stages` with the two_stream pipeline, run through the CLI on tiny weights from the real
training stages: the row is timed per stage, a missing weights file is a clear error, and the default
pipeline list leaves two_stream out when its weights are not there."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from movseg_ros.cli import main

SMALL = ["--width", "160", "--height", "120", "--iterations", "2", "--warmup", "1", "--device", "cpu", "--threads", "1"]


@pytest.mark.timeout(300)
def test_bench_two_stream_times_every_stage(tiny_two_stream, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "stages.json"
    argv = ["bench", "stages", *SMALL, "--pipelines", "two_stream", "--accelerators", "tensorrt", "eager",
            "--two-stream-weights", str(tiny_two_stream.joint), "--stem-seg-weights", str(tmp_path / "absent.pt"),
            "--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    result = json.loads(out.read_text())
    trt, eager = result["runs"]
    assert trt["pipeline"] == eager["pipeline"] and eager["pipeline"].startswith("two_stream (")
    assert trt["status"] == "unavailable" and "tensorrt" in trt["reason"] and "stages" not in trt
    assert eager["status"] == "ran" and eager["backend"] == "eager" and eager["frames"] == 2
    assert eager["weights"] == str(tiny_two_stream.joint) and eager["build_seconds"] > 0
    stages = eager["stages"]
    assert list(stages) == ["flow", "network", "masks", "tracking", "total"]
    for stage in stages.values():
        assert stage["p50_ms"] > 0 and stage["p99_ms"] >= stage["p50_ms"] and stage["fps"] > 0
    parts = sum(stages[s]["mean_ms"] for s in ("flow", "network", "masks", "tracking"))
    assert stages["total"]["mean_ms"] >= parts  # the stages are parts of the frame's total
    assert eager["peak_memory_mib"] >= 0 and eager["memory_kind"] == "cpu rss"
    assert re.search(re.escape(eager["pipeline"]) + r" +tensorrt +fp32 +unavailable: tensorrt unavailable", text)
    assert re.search(re.escape(eager["pipeline"]) + r" +eager +fp32 +flow +\d", text)
    for stage in ("flow", "network", "masks", "tracking", "total"):
        assert f" {stage} " in text
    assert "(built in " in text


def test_bench_two_stream_missing_weights_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "no_such_weights.pt"
    argv = ["bench", "stages", *SMALL, "--pipelines", "two_stream", "--two-stream-weights", str(missing)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "movseg bench: error: --pipelines two_stream" in err and str(missing) in err and "no such file" in err
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a torch file")
    argv = ["bench", "stages", *SMALL, "--pipelines", "two_stream", "--two-stream-weights", str(broken)]
    assert main(argv) == 2
    assert f"movseg bench: error: weights {broken}: not a readable torch file" in capsys.readouterr().err


def test_bench_default_pipelines_skip_two_stream_without_weights(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "stages.json"
    argv = ["bench", "stages", *SMALL, "--accelerators", "eager", "--raft-iterations", "1",
            "--two-stream-weights", str(tmp_path / "absent.pt"), "--stem-seg-weights", str(tmp_path / "absent2.pt"),
            "--json", str(out)]
    assert main(argv) == 0
    runs = json.loads(out.read_text())["runs"]
    assert [r["pipeline"].split(" ")[0] for r in runs] == ["geometric", "raft"]
    assert runs[0]["status"] == "ran" and runs[0]["stages"]["total"]["p50_ms"] > 0
    assert "two_stream" not in capsys.readouterr().out


def test_bench_default_pipelines_include_two_stream_with_weights(tiny_two_stream, tmp_path: Path) -> None:
    out = tmp_path / "stages.json"
    argv = ["bench", "stages", *SMALL, "--accelerators", "tensorrt", "--raft-iterations", "1",
            "--two-stream-weights", str(tiny_two_stream.joint), "--stem-seg-weights", str(tmp_path / "absent.pt"),
            "--json", str(out)]
    assert main(argv) == 0
    runs = json.loads(out.read_text())["runs"]
    assert [r["pipeline"].split(" ")[0] for r in runs] == ["geometric", "raft", "two_stream"]
    assert [r["status"] for r in runs] == ["ran", "unavailable", "unavailable"]  # no TensorRT on the CPU
