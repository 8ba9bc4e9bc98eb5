"""`movseg report two-stream` on tiny weights made by the real training stages (2 steps each)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from movseg_ros.cli import main
from movseg_ros.datasets.davis import find_sequences
from movseg_ros.training.common import load_train_config

TINY = ["size=[96, 64]", "min_size=64", "batch_size=1", "val_images=0", "iterations=2", "warmup=1", "lr=0.005",
        "checkpoint_every=2", "threads=1", "synth={texture_source: skimage, object_area: [0.05, 0.12]}",
        "train_seeds=[0, 1000]", "heldout_seeds=[100000, 100004]",
        "arch={fpn_channels: 16, representation_size: 16, mask_layers: 1, fusion_layers: 1}"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _train(stage: str, out: Path, extra: list[str] | None = None) -> Path:
    import importlib

    module = importlib.import_module(f"movseg_ros.training.{stage}")
    config = load_train_config(module.CONFIG, None, TINY + [f"out_dir={out}"] + (extra or []))
    return Path(module.train(config, command=f"test {stage}")["weights"])


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report_weights")
    motion = _train("motion", root / "motion")
    appearance = _train("appearance", root / "appearance")
    joint = _train("joint", root / "joint", [f"motion_weights={motion}", f"appearance_weights={appearance}"])
    return {"motion": motion, "appearance": appearance, "joint": joint}


def _args(weights: dict[str, Path], *extra: str) -> list[str]:
    return ["report", "two-stream", "--motion", str(weights["motion"]), "--appearance", str(weights["appearance"]),
            "--joint", str(weights["joint"]), *extra]


def test_report_scores_four_rows_and_davis_and_writes_json_and_png(weights, davis_square, tmp_path, capsys) -> None:
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    assert main(_args(weights, "--images", "4", "--davis", str(davis_square), "--max-frames", "2",
                      "--json", str(out_json), "--plot", str(out_png))) == 0
    table = capsys.readouterr().out
    for name in ("motion-only", "appearance-only", "appearance objectness", "joint two-stream", "mean J", "frames/s"):
        assert name in table
    report = json.loads(out_json.read_text())
    assert report["heldout"]["seeds"] == [100000, 100004] and report["heldout"]["size"] == [96, 64]
    assert str(weights["joint"]) in report["heldout"]["source"]
    rows = {r["name"]: r for r in report["rows"]}
    assert list(rows) == ["motion-only", "appearance-only", "appearance objectness", "joint two-stream"]
    for r in rows.values():
        assert r["images"] == 4 and r["iterations"] == 2 and r["date"]
        for key in ("det_map50", "seg_map50"):
            assert r[key] is None or 0.0 <= r[key] <= 1.0
    # objectness counts static objects too, so it has at least as many truth objects as the moving labelling
    assert rows["appearance objectness"]["truth"] >= rows["appearance-only"]["truth"] == rows["motion-only"]["truth"]
    assert rows["motion-only"]["truth"] == rows["joint two-stream"]["truth"] > 0
    assert rows["motion-only"]["weights"] == str(weights["motion"]) and rows["joint two-stream"]["kind"] == "two_stream"
    assert set(report["files"]) == {"motion", "appearance", "joint"}
    assert "--joint" in report["command"] and str(weights["joint"]) in report["command"]
    davis = {p["pipeline"]: p for p in report["davis"]}
    assert set(davis) == {"motion_only", "appearance_only", "two_stream", "geometric"}
    assert davis["two_stream"]["settings"]["two_stream"]["accelerator"] == "eager"
    for name, role in (("two_stream", "joint"), ("motion_only", "motion"), ("appearance_only", "appearance")):
        assert davis[name]["settings"]["two_stream"]["weights"] == str(weights[role])
    for p in davis.values():
        (seq,) = p["sequences"]
        assert seq["sequence"] == "square" and seq["frames"] == 2 == p["frames"]  # cut to 2 of the 3 frames
        assert 0.0 <= seq["J"] <= 1.0 and p["mean_j"] == pytest.approx(seq["J"])
        assert p["fps"] > 0
    assert out_png.read_bytes()[:8] == PNG_MAGIC
    image = cv2.imread(str(out_png))
    assert image is not None and image.shape[1] > 800  # two panels side by side


def test_no_davis_skips_the_comparison(weights, tmp_path, capsys) -> None:
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    assert main(_args(weights, "--images", "2", "--no-davis", "--heldout-seeds", "200000:200002",
                      "--json", str(out_json), "--plot", str(out_png))) == 0
    assert "mean J" not in capsys.readouterr().out
    report = json.loads(out_json.read_text())
    assert report["davis"] is None and report["heldout"]["seeds"] == [200000, 200002]
    assert report["heldout"]["source"] == "--heldout-seeds"
    assert all(r["images"] == 2 for r in report["rows"])
    assert out_png.read_bytes()[:8] == PNG_MAGIC


def test_wrong_kind_weights_name_the_file(weights, capsys) -> None:
    args = _args({**weights, "joint": weights["motion"]}, "--images", "1", "--no-davis")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("movseg report: error:") and str(weights["motion"]) in err and "two_stream" in err


def test_missing_or_corrupt_weights_are_errors(weights, tmp_path, capsys) -> None:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(weights["appearance"].read_bytes()[:500])
    for bad in (tmp_path / "missing.pt", corrupt):
        assert main(_args({**weights, "appearance": bad}, "--no-davis")) == 2
        err = capsys.readouterr().err
        assert err.startswith("movseg report: error:") and str(bad) in err


def test_heldout_seeds_inside_a_training_range_are_an_error(weights, capsys) -> None:
    assert main(_args(weights, "--heldout-seeds", "990:1010", "--no-davis")) == 2
    err = capsys.readouterr().err
    assert "990:1010" in err and "0:1000" in err and str(weights["motion"]) in err  # the first file checked
    assert main(_args(weights, "--heldout-seeds", "9-3", "--no-davis")) == 2
    assert "--heldout-seeds '9-3'" in capsys.readouterr().err


def test_overlap_names_the_file_that_trained_on_the_seeds(weights, tmp_path) -> None:
    """Only the appearance file trained on the split here: the error must name it, not the others."""
    from movseg_ros.two_stream.report import ReportError, check_heldout, heldout_split, read_weights

    files = {role: read_weights(path, role)[1] for role, path in weights.items()}
    split = heldout_split(files["joint"], range(5000, 5010))
    assert check_heldout(split, list(files.values())) == []  # same generator settings, seeds clear
    moved = {**files["appearance"].meta, "data": {**files["appearance"].data, "train_seeds": [5005, 6000]}}
    appearance = type(files["appearance"])("appearance", files["appearance"].path, "appearance", moved)
    with pytest.raises(ReportError, match="appearance weights") as e:
        check_heldout(split, [files["motion"], appearance, files["joint"]])
    assert str(files["appearance"].path) in str(e.value) and "5005:6000" in str(e.value)
    # a file's own (unscored) held-out range inside another file's training seeds is a note, not an error
    odd = {**files["motion"].meta, "data": {**files["motion"].data, "heldout_seeds": [10, 20]}}
    motion = type(files["motion"])("motion", files["motion"].path, "motion", odd)
    notes = check_heldout(split, [motion, files["appearance"], files["joint"]])
    assert notes and all("heldout_seeds 10:20 recorded in the motion weights" in n for n in notes)
    assert len(notes) == 3  # against the training seeds 0:1000 of all three files


def test_missing_davis_data_is_an_error(weights, tmp_path, capsys) -> None:
    assert main(_args(weights, "--images", "1", "--davis", str(tmp_path / "no_davis"))) == 2
    err = capsys.readouterr().err
    assert err.startswith("movseg report: error:") and "no_davis" in err


def test_first_frames_cuts_frames_and_truth(davis_square) -> None:
    from movseg_ros.reports.davis_pipelines import first_frames

    (seq,) = find_sequences(davis_square)
    cut = first_frames(seq, 2)
    assert len(seq) == 3 and len(cut) == 2 and cut.annotated == (0, 1)
    assert np.array_equal(cut.image(1), seq.image(1)) and np.array_equal(cut.labels(1), seq.labels(1))
    with pytest.raises(IndexError):
        cut.image(2)
    assert first_frames(seq, 0) is seq
