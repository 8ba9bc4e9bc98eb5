"""The geometric pipeline's learned refinement: its input maps, the network and its file, its place in the
segmenter, and its training stage on a tiny DAVIS-layout set made from the built-in scene."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from movseg_ros.cli import main
from movseg_ros.frame import Frame
from movseg_ros.model_files import ModelFileError
from movseg_ros.pipeline import Pipeline, PipelineConfig
from movseg_ros.refine.features import FEATURES, EvidenceMaps, stack_features
from movseg_ros.refine.network import RefineArch, build_refine, load_refine, save_refine
from movseg_ros.scene import SceneConfig, make_scene
from movseg_ros.segmenters.geometric import GeometricConfig
from scene_davis import scene_davis

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CONFIG = Path(__file__).resolve().parent.parent / "config"
SCENE = SceneConfig(width=160, height=120, frames=12)


def _maps(h: int = 40, w: int = 64) -> EvidenceMaps:
    rng = np.random.default_rng(0)
    planes = [rng.random((h, w)).astype(np.float32) for _ in range(7)]
    return EvidenceMaps(*planes, rgb=rng.integers(0, 255, (h, w, 3), np.uint8))


def test_features_are_the_maps_in_order_at_the_network_scale() -> None:
    maps = _maps()
    x = stack_features(maps, 0.25)
    assert x.shape == (len(FEATURES), 10, 16)
    fused = cv2.resize(maps.fused, (16, 10), interpolation=cv2.INTER_AREA)
    assert np.allclose(x[FEATURES.index("fused")], fused)
    assert np.allclose(x[FEATURES.index("blue")], cv2.resize(maps.rgb[..., 2].astype(np.float32) / 255, (16, 10),
                                                             interpolation=cv2.INTER_AREA))


def test_network_starts_near_the_fusion_and_its_file_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = build_refine(RefineArch(width=8)).eval()
    maps = _maps()
    x = torch.from_numpy(stack_features(maps, 0.25))[None]
    fused = torch.from_numpy(maps.fused)[None, None]
    out = net(x, fused)
    assert out.shape == (1, 1, 40, 64)
    assert ((torch.sigmoid(out) > 0.5) == (fused > 0.5)).float().mean() > 0.9  # an untrained net keeps the fusion
    save_refine(tmp_path / "r.pt", net, {"note": "test"}, half=False)
    back, meta = load_refine(tmp_path / "r.pt")
    assert meta["note"] == "test" and back.arch.width == 8
    assert torch.allclose(back(x, fused), out)
    blind = build_refine(RefineArch(width=8, rgb=False)).eval()  # the maps only: colours change nothing
    recoloured = x.clone()
    recoloured[:, FEATURES.index("red"):] = torch.rand_like(recoloured[:, FEATURES.index("red"):])
    assert blind.stem[0].in_channels == len(FEATURES) - 3 and torch.equal(blind(x, fused), blind(recoloured, fused))
    assert not torch.equal(net(x, fused), net(recoloured, fused))
    (tmp_path / "cut.pt").write_bytes((tmp_path / "r.pt").read_bytes()[:2000])
    with pytest.raises(ModelFileError, match="corrupt or truncated") as e:
        load_refine(tmp_path / "cut.pt")
    assert str(tmp_path / "cut.pt") in str(e.value)


def _run(refine_weights: str | None) -> list:
    scene = make_scene(SCENE)
    geo = dict(appearance="none", refine="learned" if refine_weights else "none", refine_weights=refine_weights or "")
    pipeline = Pipeline(PipelineConfig(geometric=GeometricConfig(**geo)))
    outs = [pipeline.process(Frame(img, i * 33_333_333, "scene", i))[0] for i, img in enumerate(scene.frames)]
    return outs, pipeline


def _net_with(tmp_path: Path, name: str, bias: float) -> str:
    net = build_refine(RefineArch(width=4))
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.fill_(bias)
    return str(save_refine(tmp_path / name, net, {}))


def test_the_refinement_decides_the_masks_and_a_neutral_one_changes_nothing(tmp_path: Path) -> None:
    plain, pipeline = _run(None)
    maps = pipeline.segmenter.last_maps
    assert maps is not None and maps.shape == (120, 160) and maps.rgb.shape == (120, 160, 3)
    assert sum(len(o.tracks) for o in plain) > 0
    neutral, _ = _run(_net_with(tmp_path, "zero.pt", 0.0))
    assert [[t.id for t in o.tracks] for o in neutral] == [[t.id for t in o.tracks] for o in plain]
    # the same masks but for the odd edge pixel (the fusion's 0 and 1 come back as 0.001 and 0.999)
    assert min(np.mean(a.label_map == b.label_map) for a, b in zip(neutral, plain)) > 0.999
    vetoed, _ = _run(_net_with(tmp_path, "veto.pt", -30.0))
    assert sum(len(o.tracks) for o in vetoed) == 0


def test_bad_refine_settings_and_a_missing_file_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="geometric.refine 'crf'"):
        GeometricConfig(refine="crf")
    missing = tmp_path / "nope.pt"
    with pytest.raises(ValueError, match="geometric.refine_weights") as e:
        Pipeline(PipelineConfig(geometric=GeometricConfig(appearance="none", refine="learned",
                                                          refine_weights=str(missing))))
    assert str(missing) in str(e.value) and "no such file" in str(e.value)


@pytest.mark.timeout(180)
def test_training_records_maps_once_runs_and_resumes(tmp_path: Path) -> None:
    data = scene_davis(tmp_path / "davis", SCENE)
    (tmp_path / "pipe.yaml").write_text("geometric:\n  appearance: none\n")
    cache = tmp_path / "cache"
    base = ["train", "refine", "--config", str(CONFIG / "train_refine_tiny.yaml"), "--set", f"data_root={data}",
            "--set", "held_aside=[b]", "--set", f"cache_dir={cache}", "--set", f"pipeline_config={tmp_path / 'pipe.yaml'}"]
    out = tmp_path / "run"
    assert main(base + ["--out-dir", str(out), "--set", "stop_after=2"]) == 0
    recorded = sorted(cache.glob("*/*.npz"))
    assert [p.name for p in recorded] == ["a.npz", "b.npz"]
    stamps = [p.stat().st_mtime_ns for p in recorded]
    assert main(base + ["--out-dir", str(out), "--resume", "--json", str(tmp_path / "s.json")]) == 0
    assert [p.stat().st_mtime_ns for p in recorded] == stamps  # read back, not recorded again
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["step"] == 3 and summary["val_iou"] is not None and summary["val_iou_fused"] > 0.2
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    assert steps == [1, 2, 3]
    _, meta = load_refine(out / "refine_geometric.pt")
    assert meta["data"]["sequences"] == ["a"] and meta["data"]["frames"] == 5 and meta["data"]["held_aside"] == ["b"]
    assert "CC BY-NC 4.0" in meta["licence"]
    (recorded[0]).write_bytes(b"not a cache")
    assert main(base + ["--out-dir", str(tmp_path / "run2")]) == 2


def test_a_held_aside_sequence_the_data_lacks_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = scene_davis(tmp_path / "davis", SCENE)
    assert main(["train", "refine", "--config", str(CONFIG / "train_refine_tiny.yaml"), "--set", f"data_root={data}",
                 "--set", "held_aside=[zebra]", "--out-dir", str(tmp_path / "run")]) == 2
    assert "zebra" in capsys.readouterr().err


def test_the_shipped_file_records_its_data_and_licence_and_runs_in_the_default_pipeline() -> None:
    from movseg_ros.config_io import load_pipeline_config
    from movseg_ros.paths import share_dir
    from movseg_ros.tuning.data import HELD_ASIDE

    _, meta = load_refine(share_dir() / "models" / "refine_geometric.pt")
    assert meta["command"].startswith("movseg train refine") and "CC BY-NC 4.0" in meta["licence"]
    assert meta["data"]["held_aside"] == list(HELD_ASIDE)
    assert not set(meta["data"]["sequences"]) & set(HELD_ASIDE) and len(meta["data"]["sequences"]) == 24
    folds = meta["recorded_with"]["fold_saliency"]  # out-of-fold maps: one of two files for each sequence
    assert sorted(folds) == sorted(meta["data"]["sequences"]) and len(set(folds.values())) == 2
    config = load_pipeline_config(CONFIG / "geometric_refine.yaml")
    assert config.geometric.refine == "learned" and config.geometric.refine_weights == ""
    pipeline = Pipeline(config)
    outs = [pipeline.process(Frame(img, i * 33_333_333, "scene", i))[0]
            for i, img in enumerate(make_scene(SCENE).frames)]
    assert pipeline.segmenter.refiner is not None and sum(len(o.tracks) for o in outs) > 0


def _fold_file(path: Path, seed: int, held_aside: list[str]) -> Path:
    from movseg_ros.saliency.network import SaliencyArch, SaliencyNet, save_saliency

    torch.manual_seed(seed)
    return save_saliency(path, SaliencyNet(SaliencyArch(width=8)), {"data": {"held_aside": held_aside}}, half=False)


@pytest.mark.timeout(240)
def test_out_of_fold_saliency_records_each_sequence_with_a_file_that_never_saw_it(tmp_path: Path, capsys) -> None:
    from movseg_ros.config_io import load_pipeline_config
    from movseg_ros.refine.data import record_sequence
    from movseg_ros.refine.features import FEATURES

    data = scene_davis(tmp_path / "davis", SCENE, names=("a", "b", "c"), frames=4)
    fold_a = _fold_file(tmp_path / "fold_a.pt", 1, ["c", "b"])  # trained on a: it records b
    fold_b = _fold_file(tmp_path / "fold_b.pt", 2, ["c", "a"])  # trained on b: it records a
    (tmp_path / "pipe.yaml").write_text("geometric:\n  appearance: saliency\n  saliency_width: 64\n")
    cache = tmp_path / "cache"
    base = ["train", "refine", "--config", str(CONFIG / "train_refine_tiny.yaml"), "--set", f"data_root={data}",
            "--set", "held_aside=[c]", "--set", f"cache_dir={cache}", "--set", f"pipeline_config={tmp_path / 'pipe.yaml'}"]
    out = tmp_path / "run"
    assert main(base + ["--set", f"fold_saliency=[{fold_a}, {fold_b}]", "--out-dir", str(out)]) == 0
    _, meta = load_refine(out / "refine_geometric.pt")
    assert meta["recorded_with"]["fold_saliency"] == {"a": str(fold_b), "b": str(fold_a)}
    # three recordings, each under the fingerprint of the saliency file it was made with
    assert sorted(p.name for p in cache.glob("*/*.npz")) == ["a.npz", "b.npz", "c.npz"]
    assert len({p.parent for p in cache.glob("*/*.npz")}) == 3
    pipe = load_pipeline_config(tmp_path / "pipe.yaml")
    cached = {p.name: np.load(p)["features"] for p in cache.glob("*/*.npz")}
    sal = FEATURES.index("salient")
    for name, right, wrong in (("a", fold_b, fold_a), ("b", fold_a, fold_b)):
        made = [record_sequence(data / name, _with(pipe, w), 0.25)[-1].features[sal] for w in (right, wrong)]
        assert np.array_equal(cached[f"{name}.npz"][-1, sal], made[0])
        assert not np.array_equal(made[0], made[1])  # the two files' maps differ: the choice shows
    # a sequence that every file trained on, or a pipeline without the prior, is refused with the setting named
    assert main(base + ["--set", f"fold_saliency=[{fold_a}]", "--out-dir", str(tmp_path / "run2")]) == 2
    err = capsys.readouterr().err
    assert "fold_saliency" in err and "'a'" in err
    (tmp_path / "none.yaml").write_text("geometric:\n  appearance: none\n")
    assert main(base + ["--set", f"fold_saliency=[{fold_a}, {fold_b}]", "--set", f"pipeline_config={tmp_path / 'none.yaml'}",
                        "--out-dir", str(tmp_path / "run3")]) == 2
    assert "saliency prior" in capsys.readouterr().err


def _with(config: PipelineConfig, weights: Path) -> PipelineConfig:
    d = config.to_dict()
    d["geometric"]["saliency_weights"] = str(weights)
    return PipelineConfig.from_dict(d)
