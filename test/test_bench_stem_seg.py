"""`movseg bench stages` with the stem_seg pipeline on tiny weights from the real training stage: the row is
timed per stage over whole clip strides, a missing weights file is a clear error, and the default pipeline
list has stem_seg exactly when its weights are there."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from movseg_ros.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread is steadier on a shared CPU
SMALL = ["--width", "160", "--height", "120", "--iterations", "2", "--warmup", "1", "--device", "cpu", "--threads", "1"]
STAGES = ["network", "clustering", "stitching", "tracking", "total"]


def test_bench_stem_seg_times_every_stage_over_whole_strides(tiny_stemseg, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "stages.json"
    argv = ["bench", "stages", *SMALL, "--pipelines", "stem_seg", "--accelerators", "tensorrt", "eager",
            "--stem-seg-weights", str(tiny_stemseg), "--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    trt, eager = json.loads(out.read_text())["runs"]
    assert trt["pipeline"] == eager["pipeline"] and eager["pipeline"].startswith("stem_seg (")
    assert trt["status"] == "unavailable" and "tensorrt" in trt["reason"] and "stages" not in trt
    assert eager["status"] == "ran" and eager["backend"] == "eager" and eager["weights"] == str(tiny_stemseg)
    stride = eager["clip_length"] - eager["clip_overlap"]
    assert eager["latency_frames"] == stride == 8
    assert eager["frames"] == stride  # 2 iterations rounded up to one whole stride: exactly one clip timed
    assert eager["untimed_frames"] == eager["clip_length"] and eager["build_seconds"] >= 0
    stages = eager["stages"]
    assert list(stages) == STAGES
    network = stages["network"]
    assert network["p50_ms"] == 0 < network["mean_ms"] <= network["p99_ms"]  # one frame of the stride ran the clip
    # exactly one of the stride's frames ran the network (x ms): mean x / stride, and p99 interpolates between
    # the two largest of the sorted times (0 and x) at 0.99 (stride - 1) - (stride - 2)
    assert network["mean_ms"] == pytest.approx(network["p99_ms"] / (0.99 * (stride - 1) - (stride - 2)) / stride,
                                               rel=1e-6)
    assert stages["total"]["mean_ms"] >= sum(stages[s]["mean_ms"] for s in STAGES[:-1])
    assert stages["total"]["fps"] > 0 and eager["memory_kind"] == "cpu rss"
    assert re.search(re.escape(eager["pipeline"]) + r" +eager +fp32 +network +\d", text)
    assert "near-online: a clip of 8 frames every 8 frames" in text and "8 frames timed" in text


def test_bench_stem_seg_missing_weights_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    missing = tmp_path / "no_such_weights.pt"
    assert main(["bench", "stages", *SMALL, "--pipelines", "stem_seg", "--stem-seg-weights", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "movseg bench: error: --pipelines stem_seg" in err and str(missing) in err and "--stem-seg-weights" in err


@pytest.mark.parametrize("present", [True, False])
def test_bench_default_pipelines_have_stem_seg_only_with_weights(present, tiny_stemseg, tmp_path: Path) -> None:
    out = tmp_path / "stages.json"
    weights = tiny_stemseg if present else tmp_path / "absent.pt"
    argv = ["bench", "stages", *SMALL, "--accelerators", "tensorrt", "--raft-iterations", "1",
            "--two-stream-weights", str(tmp_path / "absent.pt"), "--stem-seg-weights", str(weights), "--json", str(out)]
    assert main(argv) == 0
    runs = json.loads(out.read_text())["runs"]
    names = ["geometric", "raft"] + (["stem_seg"] if present else [])
    assert [r["pipeline"].split(" ")[0] for r in runs] == names
    assert [r["status"] for r in runs] == ["ran"] + ["unavailable"] * (len(names) - 1)  # no TensorRT on the CPU
