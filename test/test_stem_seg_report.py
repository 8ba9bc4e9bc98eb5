"""`movseg report stemseg` on tiny weights from the real training stages (the session fixtures): the three
parts in the JSON, table and PNG, errors that name the file or setting, and the stream scoring itself on
the built-in scene, where the geometric pipeline finds the mover."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from movseg_ros.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: one thread is steadier on a shared CPU
SMALL = ["--clips", "2", "--frames", "10", "--width", "160", "--height", "120", "--speed-frames", "3"]


def _unit(value: float | None) -> bool:
    return value is None or 0.0 <= value <= 1.0


def test_report_runs_every_pipeline_on_clips_davis_and_speed(tiny_stemseg, tiny_two_stream, davis_square, tmp_path,
                                                             capsys) -> None:
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    argv = ["report", "stemseg", "--weights", str(tiny_stemseg), "--joint", str(tiny_two_stream.joint), *SMALL,
            "--davis", str(davis_square), "--json", str(out_json), "--plot", str(out_png)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    for text in ("inst J&F", "bin J", "mean J", "latency ms", "delay ms", "at 30 Hz"):
        assert text in table
    report = json.loads(out_json.read_text())
    held = report["heldout"]
    assert held["seeds"] == [100000, 100004] and held["frames"] == 10 and held["size"] == [96, 64]
    assert held["train_clip_length"] == 3 and held["preset"] == "stemseg" and str(tiny_stemseg) in held["source"]
    assert report["files"]["stem_seg"]["path"] == str(tiny_stemseg)
    assert report["files"]["two_stream"]["path"] == str(tiny_two_stream.joint)
    synth = {p["pipeline"]: p for p in report["synth"]}
    assert list(synth) == ["stem_seg", "two_stream", "geometric"]
    assert synth["stem_seg"]["settings"]["stem_seg"]["accelerator"] == "eager"
    assert synth["stem_seg"]["settings"]["stem_seg"]["weights"] == str(tiny_stemseg)
    for p in synth.values():
        assert [c["sequence"] for c in p["clips"]] == ["seed_100000", "seed_100001"]
        assert all(c["frames"] == 10 and c["objects"] >= 1 for c in p["clips"])  # the stemseg preset always moves one
        for key in ("instance_jf", "instance_j", "instance_f", "binary_j"):
            assert _unit(p[key]), (p["pipeline"], key, p[key])
        assert all(_unit(c["instance_jf"]) and _unit(c["binary_j"]) for c in p["clips"])
        assert isinstance(p["id_switches"], int) and p["id_switches"] >= 0
        assert p["id_switches"] == sum(c["id_switches"] for c in p["clips"])
        assert p["frames"] == 20 and p["fps"] > 0
    davis = {p["pipeline"]: p for p in report["davis"]}
    assert list(davis) == ["stem_seg", "two_stream", "geometric"]
    for p in davis.values():
        (seq,) = p["sequences"]
        assert seq["sequence"] == "square" and seq["frames"] == 3 and _unit(seq["J"]) and p["fps"] > 0
    speed = report["speed"]
    assert (speed["width"], speed["height"]) == (160, 120)
    rows = {r["pipeline"]: r for r in speed["rows"]}
    assert list(rows) == ["stem_seg", "two_stream", "geometric"]
    assert rows["stem_seg"]["latency_frames"] == 8  # T - T_c of the default clips (8, 0)
    assert rows["stem_seg"]["frame_delay_ms"] == pytest.approx(8 * 1000.0 / 30.0)
    for r in rows.values():
        assert r["frames"] == 3 and r["fps"] > 0 and r["rate_hz"] == 30.0
        assert r["compute_max_ms"] >= r["compute_ms"] > 0
        assert r["latency_ms"] == pytest.approx(r["compute_ms"] + r["frame_delay_ms"])
    assert rows["geometric"]["frame_delay_ms"] == 0 == rows["two_stream"]["latency_frames"]
    assert out_png.read_bytes()[:8] == PNG_MAGIC
    image = cv2.imread(str(out_png))
    assert image is not None and image.shape[1] >= 1400  # three panels side by side


def test_no_davis_and_given_seeds(tiny_stemseg, tmp_path, capsys) -> None:
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    chosen = tmp_path / "stem.yaml"  # the stem_seg column's own settings; weights and eager still the report's
    chosen.write_text("pipeline: stem_seg\nstem_seg:\n  seed_threshold: 0.33\n  weights: elsewhere.pt\n  accelerator: compile\n")
    argv = ["report", "stemseg", "--weights", str(tiny_stemseg), *SMALL, "--clips", "3", "--heldout-seeds",
            "200000:200001", "--no-davis", "--rate", "10", "--config", str(chosen), "--json", str(out_json),
            "--plot", str(out_png)]
    assert main(argv) == 0
    assert "mean J" not in capsys.readouterr().out
    report = json.loads(out_json.read_text())
    assert report["davis"] is None and "two_stream" not in report["files"]
    assert report["heldout"]["seeds"] == [200000, 200001] and report["heldout"]["source"] == "--heldout-seeds"
    assert [p["pipeline"] for p in report["synth"]] == ["stem_seg", "geometric"]
    assert all(len(p["clips"]) == 1 for p in report["synth"])  # --clips 3 but one seed: all are scored, noted
    assert any("--clips 3" in n for n in report["notes"])
    (stem, _) = report["speed"]["rows"]
    assert stem["frame_delay_ms"] == pytest.approx(800.0)  # 8 frames at 10 Hz (clips of 8, no overlap)
    assert "--no-davis" in report["command"] and "200000:200001" in report["command"]
    stem_settings = report["synth"][0]["settings"]["stem_seg"]
    assert stem_settings["seed_threshold"] == 0.33 and stem_settings["weights"] == str(tiny_stemseg)
    assert stem_settings["accelerator"] == "eager" and str(chosen) in report["command"]
    assert report["synth"][1]["settings"]["pipeline"] == "geometric"
    assert main([*argv[:-6], "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    image = cv2.imread(str(out_png))
    assert image is not None and 900 <= image.shape[1] < 1400  # two panels


def test_wrong_kind_or_missing_weights_name_the_file(tiny_stemseg, tiny_two_stream, tmp_path, capsys) -> None:
    joint = tiny_two_stream.joint
    cases = [(["--weights", str(joint)], joint, "stemseg"),  # a two-stream file as the STEm-Seg weights
             (["--weights", str(tiny_stemseg), "--joint", str(tiny_stemseg)], tiny_stemseg, "two_stream"),
             (["--weights", str(tmp_path / "absent.pt")], tmp_path / "absent.pt", "no such file")]
    for args, path, problem in cases:
        assert main(["report", "stemseg", *args, "--no-davis"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("movseg report: error:") and str(path) in err and problem in err


def test_overlapping_or_bad_seeds_and_settings_are_errors(tiny_stemseg, capsys) -> None:
    base = ["report", "stemseg", "--weights", str(tiny_stemseg), "--no-davis"]
    assert main([*base, "--heldout-seeds", "990:1010"]) == 2  # the tiny weights trained on seeds 0:1000
    err = capsys.readouterr().err
    assert "990:1010" in err and "0:1000" in err and str(tiny_stemseg) in err and "overlap" in err
    for option, value, problem in (("--heldout-seeds", "9-3", "--heldout-seeds '9-3'"), ("--clips", "0", "--clips"),
                                   ("--frames", "1", "--frames"), ("--rate", "0", "--rate"),
                                   ("--width", "32", "--width/--height")):
        assert main([*base, option, value]) == 2
        assert problem in capsys.readouterr().err


def test_overlap_names_the_two_stream_file_when_only_it_trained_on_the_seeds(tiny_stemseg, tmp_path) -> None:
    from movseg_ros.reports.common import ReportError
    from movseg_ros.reports.stemseg import WeightsRecord, check_heldout, clip_split, read_stemseg

    stem = read_stemseg(tiny_stemseg)
    split = clip_split(stem, 12, range(5000, 5004))
    assert split.synth_config().frames == 12 and (split.synth_config().width, split.synth_config().height) == (96, 64)
    joint_path = tmp_path / "joint.pt"
    joint = WeightsRecord("two_stream", joint_path, {"data": {**stem.data, "train_seeds": [5003, 9000]}})
    with pytest.raises(ReportError, match="two_stream weights") as e:
        check_heldout(split, [stem, joint])
    assert str(joint_path) in str(e.value) and "5003:9000" in str(e.value) and str(tiny_stemseg) not in str(e.value)
    other = WeightsRecord("two_stream", joint_path, {"data": {"preset": "motion", "size": [96, 64],
                                                              "train_seeds": [0, 1000]}})
    notes = check_heldout(split, [stem, other])
    assert len(notes) == 1 and "generator settings" in notes[0] and str(joint_path) in notes[0]


def test_stream_scores_find_the_scene_mover_with_the_geometric_pipeline() -> None:
    """The scoring path on a stream whose answer is known: the built-in scene's mover as the only object."""
    from movseg_ros.evaluation.davis_metrics import jaccard
    from movseg_ros.pipeline import Pipeline
    from movseg_ros.reports.array_sequence import array_sequence
    from movseg_ros.reports.davis_pipelines import pipeline_config, run_stream
    from movseg_ros.reports.heldout_streams import score_streams
    from movseg_ros.reports.stemseg import contiguous_ids
    from movseg_ros.scene import SceneConfig, make_scene

    scene = make_scene(SceneConfig(width=160, height=120, frames=8))
    truth = np.stack([np.where(ids == scene.roles["mover"], 7, 0) for ids in scene.ids])  # id 7: not 1..K
    seq = array_sequence("scene", np.stack(scene.frames), contiguous_ids(truth))
    assert set(np.unique(seq.labels(0))) == {0, 1}
    (score,) = score_streams([seq], {"geometric": pipeline_config("geometric")})
    run = run_stream(Pipeline(pipeline_config("geometric")), seq)
    expected = np.nanmean([jaccard(p > 0, t > 0) for p, t in zip(run.labels, truth)])
    assert score.binary_j == pytest.approx(expected)  # the same frames, scored by the library code
    assert score.binary_j > 0.2 and score.instance_jf > 0.5  # the mover is found (the stopper also moves)
    assert score.clips[0]["objects"] == 1 and score.id_switches is not None and score.frames == 8


def test_the_geometric_column_runs_the_given_config(tiny_stemseg, tmp_path) -> None:
    from pathlib import Path

    from movseg_ros.reports.common import ReportError
    from movseg_ros.reports.stemseg import StemSegReportSettings, report_configs

    config = Path(__file__).resolve().parent.parent / "config"
    shipped = report_configs(StemSegReportSettings(weights=tiny_stemseg))["geometric"]
    given = report_configs(StemSegReportSettings(weights=tiny_stemseg,
                                                 geometric_config=config / "geometric_no_memory.yaml"))["geometric"]
    assert shipped.geometric.memory_net == "visual_memory" and given.geometric.memory_net == "none"
    with pytest.raises(ReportError, match="not geometric"):
        report_configs(StemSegReportSettings(weights=tiny_stemseg, geometric_config=config / "visual_memory.yaml"))
