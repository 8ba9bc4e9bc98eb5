"""`movseg tune` on a tiny synthetic DAVIS-layout set: the split, the dev-set guard, the space checks,
the search and its outputs, agreement with `movseg eval`, worker-count independence and resume."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
from core_helpers import write_scene_as_davis

from movseg_ros.commands import eval as eval_command
from movseg_ros.commands import tune as tune_command
from movseg_ros.config_io import load_pipeline_config
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.scene import SceneConfig
from movseg_ros.tuning import SearchSettings, TuneError, apply_settings, load_space, named_split, split_sequences, tune
from movseg_ros.tuning.workers import DataSpec

CLIPS = ("clip-0", "clip-1", "clip-2")
FRAMES = 8
BASE_K = 1.0  # a poor residual threshold at this size (J ~0.4): the search has something to find
SPACE = "geometric.residual_k: {low: 2.0, high: 6.0}\n"


def command(module, *argv: str | Path) -> int:
    """`movseg <module> ARGV` in this process (only that subcommand's parser)."""
    parser = argparse.ArgumentParser(prog=f"movseg {module.__name__.rsplit('.', 1)[-1]}")
    module.add_arguments(parser)
    return module.run(parser.parse_args([str(a) for a in argv]))


def write_clip(root: Path, name: str, seed: int) -> None:
    """A 160x120 DAVIS-2016 sequence from the built-in scene: 255 where an object that moves is."""
    write_scene_as_davis(root, name, SceneConfig(width=160, height=120, frames=FRAMES, seed=seed, stop_frame=FRAMES,
                                                 mover_speed=3.0, stopper_speed=2.5, pan_speed=1.5))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The data set (3 clips), a base config (motion only at work width 160, residual_k 1.0) and a one-setting space."""
    root = tmp_path_factory.mktemp("tune")
    for k, name in enumerate(CLIPS):
        write_clip(root / "data", name, seed=k)
    (root / "base.yaml").write_text(f"geometric: {{work_width: 160, residual_k: {BASE_K}, appearance: none, "
                                    "motion_net: none, memory_net: none}\n")  # motion alone: the threshold decides
    (root / "space.yaml").write_text(SPACE)
    return {"data": root / "data", "base": root / "base.yaml", "space": root / "space.yaml", "root": root}


@pytest.fixture(scope="module")
def tuned(files: dict[str, Path]) -> dict:
    """One search of 3 random trials through the command, with every output."""
    out = files["root"] / "out"
    argv = [files["data"], "--space", files["space"], "--config", files["base"], "--trials", "3", "--out", out,
            "--json", files["root"] / "copy.json", "--write-config", files["root"] / "copy.yaml"]
    assert command(tune_command, *argv) == 0
    return {"out": out, "summary": json.loads((out / "tune.json").read_text())}


def test_split_is_deterministic_disjoint_and_never_empty() -> None:
    for n in (2, 3, 7, 30):
        names = [f"seq-{i:02d}" for i in range(n)]
        for fraction in (0.01, 0.2, 0.5, 0.99):
            split = split_sequences(names, fraction, seed=3)
            shuffled = random.Random(1).sample(names, n)
            assert split == split_sequences(shuffled, fraction, seed=3)  # the order of the names does not matter
            assert set(split.search).isdisjoint(split.heldout) and set(split.search) | set(split.heldout) == set(names)
            assert len(split.heldout) == min(max(round(fraction * n), 1), n - 1) and split.search
    names = [f"seq-{i:02d}" for i in range(30)]
    assert len({split_sequences(names, 0.2, seed).heldout for seed in range(5)}) > 1  # the seed picks the sequences
    assert named_split(names, ["seq-04", "seq-01"]).heldout == ("seq-01", "seq-04")
    for bad in (lambda: split_sequences(["only"], 0.2), lambda: split_sequences(names, 0.0),
                lambda: named_split(names, names), lambda: named_split(names, ["nope"])):
        with pytest.raises(TuneError):
            bad()


def test_the_dev_set_is_refused(files: dict[str, Path], tmp_path: Path, monkeypatch, capsys) -> None:
    dev = tmp_path / "dev"
    write_clip(dev, "dog", seed=5)
    monkeypatch.setenv("MOVSEG_DAVIS", str(dev))
    (tmp_path / "link").symlink_to(dev)
    for data in (dev, dev / "dog", tmp_path / "link"):
        assert command(tune_command, data, "--space", files["space"], "--out", tmp_path / "out") == 2
        err = capsys.readouterr().err
        assert err.startswith("movseg tune: error:") and "the dev set is for reporting, never for searching" in err
    monkeypatch.setenv("MOVSEG_DAVIS_TRAIN", str(dev))  # the default data pointed at the dev set
    assert command(tune_command, "--space", files["space"], "--out", tmp_path / "out") == 2
    assert "never for searching" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("space, key, problem", [
    ("geometric.no_such_setting: {low: 1, high: 2}", "geometric.no_such_setting", "unknown setting"),
    ("tracker.alpha_low: {low: 0.9, high: 0.5}", "tracker.alpha_low", "must be below high"),
    ("geometric.memory: {low: 0.5, high: 2.0}", "geometric.memory", "geometric.memory must be in"),
    ("geometric.colour_reach: {low: 10, high: 20}", "geometric.colour_reach", "int: true"),
    ("geometric.refine_eps: {low: 0, high: 0.01, log: true}", "geometric.refine_eps", "low > 0"),
    ("geometric.residual_k: {low: 1, high: 2, step: 1}", "geometric.residual_k", "'step'"),
    ("tracker: {low: 0.1, high: 0.2}", "tracker", "section"),
    ("geometric.flow_preset: {low: 1, high: 2}", "geometric.flow_preset", "choices"),
    ("geometric.refine_radius: {choices: [4, 8.5]}", "geometric.refine_radius", "must be int"),
    ("tracker.alpha_low: {low: 0.5, high: 0.95}", "tracker.alpha_low", "alpha_high"),  # above the base's 0.9
])
def test_bad_space_keys_exit_2_naming_the_file_and_key(files: dict[str, Path], tmp_path: Path, capsys,
                                                        space: str, key: str, problem: str) -> None:
    path = tmp_path / "bad_space.yaml"
    path.write_text(space + "\n")
    assert command(tune_command, files["data"], "--space", path, "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("movseg tune: error:") and len(err.splitlines()) == 1
    assert str(path) in err and f"{key}:" in err and problem in err
    assert not (tmp_path / "out").exists()


def test_a_range_that_needs_another_searched_setting_is_accepted(tmp_path: Path) -> None:
    """alpha_low up to 0.95 is valid once alpha_high is searched up to 0.98 (the base has alpha_high 0.9)."""
    path = tmp_path / "space.yaml"
    path.write_text("tracker: {alpha_low: {low: 0.5, high: 0.95}}\ntracker.alpha_high: {low: 0.6, high: 0.98}\n"
                    "geometric.refine_radius: {choices: [0, 8]}\n"
                    "tracker.t_inactive: {low: 2, high: 30, int: true, log: true}\n")
    space = load_space(path, PipelineConfig())
    assert space.names == ("tracker.alpha_low", "tracker.alpha_high", "geometric.refine_radius", "tracker.t_inactive")
    draws = [space.sample(np.random.default_rng([0, i])) for i in range(200)]
    assert all(0.5 <= d["tracker.alpha_low"] <= 0.95 and d["geometric.refine_radius"] in (0, 8) for d in draws)
    assert {type(d["tracker.t_inactive"]) for d in draws} == {int} and min(d["tracker.t_inactive"] for d in draws) == 2
    # refinement starts from the base too, whose values may lie off the space (t_inactive 0 under a log range)
    off_space = draws[0] | {"tracker.t_inactive": 0, "geometric.refine_radius": 3}
    near = space.perturb(off_space, np.random.default_rng(0), 0.1)
    assert 2 <= near["tracker.t_inactive"] <= 5 and near["geometric.refine_radius"] in (0, 3, 8)


def test_search_beats_a_poor_base_and_writes_every_output(files: dict[str, Path], tuned: dict, capsys) -> None:
    out, summary = tuned["out"], tuned["summary"]
    lines = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    assert sorted(t["trial"] for t in lines) == [0, 1, 2, 3] and all(t["valid"] for t in lines)
    base = next(t for t in lines if t["trial"] == 0)
    assert base["phase"] == "base" and base["settings"] == {"geometric.residual_k": BASE_K}
    assert all(2.0 <= t["settings"]["geometric.residual_k"] <= 6.0 for t in lines if t["trial"] > 0)
    best = max(lines, key=lambda t: t["search_j"])
    assert summary["best"]["trial"] == best["trial"] != 0
    assert best["search_j"] > base["search_j"] + 0.1  # residual_k 1.0 fires on noise at this size
    assert summary["base"]["search_j"] == base["search_j"]
    assert summary["best"]["gap"] == pytest.approx(summary["best"]["search_j"] - summary["best"]["heldout_j"])
    split = summary["split"]
    assert sorted(split["search"] + split["heldout"]) == list(CLIPS) and len(split["heldout"]) == 1
    assert set(best["sequence_j"]) == set(split["search"])
    assert set(summary["best"]["heldout_sequence_j"]) == set(split["heldout"])
    assert [t["search_j"] for t in summary["top"]] == sorted((t["search_j"] for t in lines), reverse=True)
    # best.yaml (and its --write-config copy) rebuilds the best trial's config over the base
    chosen = load_pipeline_config(out / "best.yaml")
    assert chosen == apply_settings(load_pipeline_config(files["base"]), best["settings"])
    assert chosen.geometric.work_width == 160
    assert chosen.geometric.residual_k == best["settings"]["geometric.residual_k"]
    assert (files["root"] / "copy.yaml").read_text() == (out / "best.yaml").read_text()
    assert json.loads((files["root"] / "copy.json").read_text()) == summary
    assert cv2.imread(str(out / "tune.png")) is not None


def test_the_table_shows_the_top_trials_and_both_final_checks(tuned: dict) -> None:
    text = tune_command.table(tuned["summary"])
    b, s = tuned["summary"]["best"], tuned["summary"]["base"]
    assert "geometric.residual_k" in text and "#0 base" in text
    assert (f"best (trial {b['trial']}): search J {b['search_j']:.4f}, held-aside J {b['heldout_j']:.4f}" in text
            and f"base: search J {s['search_j']:.4f}, held-aside J {s['heldout_j']:.4f}" in text)


def test_trial_j_equals_movseg_eval_with_best_yaml(files: dict[str, Path], tuned: dict, tmp_path: Path) -> None:
    """Per sequence, J of the best trial (search split) and of its final check (held aside) equal `movseg eval`'s.

    Each eval runs one sequence after resetting OpenCV's random generator, as a fresh process would."""
    summary = tuned["summary"]
    expected = ({n: j for n, j in summary["trials"][summary["best"]["trial"]]["sequence_j"].items()}
                | summary["best"]["heldout_sequence_j"])
    assert len(expected) == len(CLIPS)
    for name, j in expected.items():
        cv2.setRNGSeed(0)
        report = tmp_path / f"{name}.json"
        assert command(eval_command, files["data"], "--config", tuned["out"] / "best.yaml", "--sequences", name,
                       "--json", report, "--write-predictions", tmp_path / "preds") == 0
        (row,) = json.loads(report.read_text())["sequences"]
        assert row["davis"]["J"]["mean"] == pytest.approx(j, rel=0, abs=1e-12) and j > 0.2


def test_two_workers_give_the_same_trials_as_one(files: dict[str, Path], tuned: dict, tmp_path: Path) -> None:
    assert command(tune_command, files["data"], "--space", files["space"], "--config", files["base"], "--trials", "3",
                   "--workers", "2", "--out", tmp_path / "out") == 0
    two = json.loads((tmp_path / "out" / "tune.json").read_text())
    one = tuned["summary"]
    assert [(t["settings"], t["search_j"], t["sequence_j"]) for t in two["trials"]] == \
           [(t["settings"], t["search_j"], t["sequence_j"]) for t in one["trials"]]
    assert two["best"]["heldout_sequence_j"] == one["best"]["heldout_sequence_j"]
    assert (tmp_path / "out" / "best.yaml").read_text() == (tuned["out"] / "best.yaml").read_text()


class CountingPipelines:
    """make_pipeline hook that counts the pipelines built, per (trial config, sequence)."""

    def __init__(self) -> None:
        self.built: list[tuple[float, str]] = []

    def __call__(self, config: PipelineConfig, sequence: str) -> Pipeline:
        self.built.append((config.geometric.residual_k, sequence))
        return Pipeline(config)


def test_resume_continues_after_the_logged_trials(files: dict[str, Path], tuned: dict, tmp_path: Path, capsys) -> None:
    base = load_pipeline_config(files["base"])
    space = load_space(files["space"], base)
    data = DataSpec(files["data"].resolve(), "auto", CLIPS)
    split = split_sequences(CLIPS, 0.2, 0)
    log = tmp_path / "trials.jsonl"
    first = tune(data, split, space, base, SearchSettings(trials=1), log, make_pipeline=CountingPipelines(),
                 progress=False)
    assert [t.trial for t in first.trials] == [0, 1]
    head = log.read_text()
    with open(log, "a") as f:
        f.write('{"run": "cut short by a kil')  # an unfinished line from a stopped session: that trial runs again
    counter = CountingPipelines()
    second = tune(data, split, space, base, SearchSettings(trials=3), log, resume=True, make_pipeline=counter,
                  progress=False)
    assert log.read_text().startswith(head) and len(log.read_text().splitlines()) == 4
    assert second.resumed == 2 and [t.trial for t in second.trials] == [0, 1, 2, 3]
    new = {t.settings["geometric.residual_k"] for t in second.trials[2:]}
    searched = [(k, s) for k, s in counter.built if s in split.search]
    assert sorted(searched) == sorted((k, s) for k in new for s in split.search)  # trials 2 and 3 only, once each
    # the same trials, scores and choice as the uninterrupted search
    assert [(t.settings, t.search_j) for t in second.trials] == \
           [(t["settings"], t["search_j"]) for t in tuned["summary"]["trials"]]
    assert second.best.heldout_j == tuned["summary"]["best"]["heldout_j"]
    # another seed is another search: its log is not resumed, and an existing log needs --resume
    for other in ({"settings": SearchSettings(trials=3, seed=1)}, {"make_pipeline": None}):
        with pytest.raises(TuneError, match="another search"):
            tune(data, split, space, base, **({"settings": SearchSettings(trials=3), "make_pipeline": counter} | other),
                 log_path=log, resume=True, progress=False)
    assert command(tune_command, files["data"], "--space", files["space"], "--config", files["base"],
                   "--out", tuned["out"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_invalid_candidates_are_logged_and_skipped(files: dict[str, Path], tmp_path: Path) -> None:
    base = load_pipeline_config(files["base"])
    path = tmp_path / "space.yaml"
    path.write_text("tracker.alpha_low: {low: 0.5, high: 0.95}\ntracker.alpha_high: {low: 0.6, high: 0.96}\n")
    space = load_space(path, base)
    settings = SearchSettings(trials=8, seed=2)
    expected = set()
    for i in range(1, 9):
        draw = space.sample(np.random.default_rng([settings.seed, i]))
        if draw["tracker.alpha_low"] > draw["tracker.alpha_high"]:
            expected.add(i)
    assert expected and len(expected) < 8  # the seed gives both kinds
    result = tune(DataSpec(files["data"].resolve(), "auto", CLIPS), split_sequences(CLIPS, 0.2, 0), space, base,
                  settings, tmp_path / "trials.jsonl", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "trials.jsonl").read_text().splitlines()]
    assert len(lines) == len(result.trials) == 9 and result.invalid == len(expected)
    assert {t["trial"] for t in lines if not t["valid"]} == expected
    assert all("alpha_low" in t["error"] and t["search_j"] is None for t in lines if not t["valid"])
    assert result.best.trial not in expected


def test_cached_saliency_pipelines_agree_with_plain_ones_and_run_the_network_once_a_frame(files, tmp_path) -> None:
    """The tune hook for `appearance: saliency` reuses each frame's map across candidates without changing J."""
    import torch

    from movseg_ros.saliency.network import SaliencyArch, SaliencyNet, save_saliency
    from movseg_ros.tuning.saliency_cache import CachedSaliencyPipelines
    from movseg_ros.tuning.scoring import HeldSequence, run_candidate
    from movseg_ros.datasets import open_dataset

    torch.manual_seed(0)
    weights = save_saliency(tmp_path / "s.pt", SaliencyNet(SaliencyArch(width=8)), {}, half=False)
    held = HeldSequence.load(open_dataset(files["data"], "auto", ["clip-0"])[0])
    config = PipelineConfig.from_dict({"geometric": {"work_width": 160, "appearance": "saliency",
                                                     "saliency_weights": str(weights), "saliency_every": 2,
                                                     "saliency_threshold": 0.3, "saliency_touch": 0.01}})
    plain, _ = run_candidate(held, config)
    hook = CachedSaliencyPipelines()
    first, _ = run_candidate(held, config, hook)
    cache = next(iter(hook._caches.values()))
    assert len(cache) >= FRAMES // 2 - 1  # frames 0, 2, 4 (and 6, if its run ended before the stream did)
    original = dict(cache)
    second, _ = run_candidate(held, config, hook)
    assert first == plain == second
    assert len(cache) <= FRAMES // 2 and all(cache[k] is original[k] for k in original), "second run reused the maps"


def test_a_worker_gives_torch_its_share_of_the_cores(files: dict[str, Path]) -> None:
    """Each worker runs learned pipelines with its share of threads: W workers with torch's default thread
    count each oversubscribe the cores, which made a two_stream search crawl."""
    import torch

    from movseg_ros.tuning import workers

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        workers._start_worker(DataSpec(files["data"].resolve(), "auto", CLIPS), None, 1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
        workers._WORKER = None
