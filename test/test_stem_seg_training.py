"""`movseg train stemseg` on a tiny config: files and metadata, exact resume, the source mix, bad configs, DDP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from movseg_ros.cli import main
from movseg_ros.model_files import load_checkpoint
from movseg_ros.stem_seg.network import load_stemseg
from movseg_ros.training.common import load_train_config
from movseg_ros.training.stemseg import StemSegTrainConfig, training_mix

REPO = Path(__file__).resolve().parent.parent
TINY = REPO / "config" / "train_stemseg_tiny.yaml"


def _train(out: Path, *extra: str) -> int:
    return main(["train", "stemseg", "--config", str(TINY), "--out-dir", str(out), "--set", f"export={out / 'w.pt'}",
                 *extra])


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_run_writes_weights_metrics_plot_and_checkpoint(tiny_stemseg: Path) -> None:
    out = tiny_stemseg.parent
    recs = [r for r in _records(out) if "loss" in r]
    assert [r["step"] for r in recs] == [1, 2, 3]
    assert all(set(r) >= {"embedding", "smoothness", "seediness", "lr"} for r in recs)
    assert all(r["loss"] == pytest.approx(r["embedding"] + r["smoothness"] + r["seediness"], rel=1e-5) for r in recs)
    assert any("val_tube_iou" in r for r in _records(out))
    assert (out / "metrics.png").stat().st_size > 1000
    model, meta = load_stemseg(tiny_stemseg)
    assert meta["stage"] == "stemseg" and meta["iterations"] == 3 and "train stemseg" in meta["command"]
    assert meta["data"]["clip_length"] == 3 and meta["data"]["heldout_seeds"] == [100000, 100004]
    assert meta["stored_dtype"] == "float16" and not model.training


def test_resume_continues_exactly(tmp_path: Path) -> None:
    full, split = tmp_path / "full", tmp_path / "split"
    assert _train(full, "--set", "val_images=0") == 0
    assert _train(split, "--set", "val_images=0", "--set", "stop_after=2") == 0
    assert _train(split, "--set", "val_images=0", "--resume") == 0
    losses = lambda out: {r["step"]: r["loss"] for r in _records(out) if "loss" in r}  # noqa: E731
    assert sorted(losses(split)) == [1, 2, 3]
    for step, loss in losses(full).items():
        assert losses(split)[step] == pytest.approx(loss, rel=1e-5, abs=1e-6)
    a = load_checkpoint(full / "w.pt", "stemseg")["state_dict"]
    b = load_checkpoint(split / "w.pt", "stemseg")["state_dict"]
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-3) for k in a)


def test_sources_are_mixed_by_weight(tmp_path: Path) -> None:
    """Synthetic, animated-image and DAVIS-layout video clips sampled together (video from a tiny folder)."""
    root = _tiny_davis(tmp_path)
    config = load_train_config(StemSegTrainConfig, TINY, ["synth_weight=0.5", "animated_weight=0.3",
                                                          "video_weight=0.2", f"video_root={root}"])
    mix = training_mix(config)
    counts = mix.counts()
    assert len(counts) == 3 and all(c > 0 for c in counts)
    seen = set()
    for i in range(40):
        item = mix[i]
        assert item["images"].shape == (3, 3, 64, 96) and item["instances"].shape == (3, 64, 96)
        seen.add(item["source"].split(":")[0])
    assert {"synth", "animated", "video"} <= seen


def _tiny_davis(root: Path) -> Path:
    """A DAVIS-2016-layout folder: one 4-frame sequence with a moving white box as its mask."""
    import numpy as np
    from PIL import Image

    for sub in ("JPEGImages/480p/box", "Annotations/480p/box"):
        (root / sub).mkdir(parents=True)
    for t in range(4):
        img = np.full((64, 96, 3), 40, np.uint8)
        mask = np.zeros((64, 96), np.uint8)
        mask[20:40, 10 + 5 * t:30 + 5 * t] = 255
        img[mask > 0] = (200, 30, 30)
        Image.fromarray(img).save(root / f"JPEGImages/480p/box/{t:05d}.jpg")
        Image.fromarray(mask).save(root / f"Annotations/480p/box/{t:05d}.png")
    return root


@pytest.mark.parametrize("overrides,words", [
    (["nonsense=1"], "unknown key"),
    (["arch={mixing: xyzt}"], "mixing"),
    (["video_weight=0.5"], "video_root"),
    (["synth_weight=0", "animated_weight=0"], "no source"),
    (["clip_length=1"], "clip_length"),
    (["optimizer=rmsprop"], "optimizer"),
    (["coco_annotations=a.json"], "coco_annotations/coco_images"),
])
def test_bad_configs_are_named(overrides, words, tmp_path: Path, capsys) -> None:
    assert _train(tmp_path, *[a for o in overrides for a in ("--set", o)]) == 2
    err = capsys.readouterr().err
    assert "movseg train: error:" in err and words in err


def _tiny_davis_two(root: Path) -> Path:
    """Two sequences, box and disk, in the DAVIS-2016 layout."""
    import numpy as np
    from PIL import Image

    _tiny_davis(root)
    for sub in ("JPEGImages/480p/disk", "Annotations/480p/disk"):
        (root / sub).mkdir(parents=True)
    for t in range(4):
        img = np.full((64, 96, 3), 90, np.uint8)
        mask = np.zeros((64, 96), np.uint8)
        mask[30:50, 40:60] = 255
        img[mask > 0] = (30, 200, 30)
        Image.fromarray(img).save(root / f"JPEGImages/480p/disk/{t:05d}.jpg")
        Image.fromarray(mask).save(root / f"Annotations/480p/disk/{t:05d}.png")
    return root


def test_held_aside_video_is_never_sampled_and_frozen_blocks_keep_imagenet_weights(tmp_path: Path, capsys) -> None:
    root = _tiny_davis_two(tmp_path / "davis")
    video = ["synth_weight=0", "animated_weight=0", "video_weight=1", f"video_root={root}"]
    config = load_train_config(StemSegTrainConfig, TINY, video + ["video_held_aside=[disk]"])
    mix = training_mix(config)
    assert {mix[i]["origin"].split()[0] for i in range(30)} == {"box"}
    both = training_mix(load_train_config(StemSegTrainConfig, TINY, video))
    assert {both[i]["origin"].split()[0] for i in range(30)} == {"box", "disk"}
    # a held-aside name the set lacks is refused, naming it
    out = tmp_path / "run"
    assert _train(out, *[a for o in video + ["video_held_aside=[zebra]"] for a in ("--set", o)]) == 2
    assert "zebra" in capsys.readouterr().err
    # the ImageNet backbone's first blocks stay as loaded; the rest of the network trains
    imagenet = ["arch={backbone: mobilenet_v2, norm: frozen_bn}", "init=imagenet", "frozen_blocks=18",
                "video_held_aside=[disk]", "val_images=0"]
    assert _train(out, *[a for o in video + imagenet for a in ("--set", o)]) == 0
    model, meta = load_stemseg(out / "w.pt")
    from movseg_ros.stem_seg.network import StemSegArch, build_stemseg
    from movseg_ros.two_stream.backbones import init_backbone

    arch = StemSegArch.from_dict({"backbone": "mobilenet_v2", "norm": "frozen_bn"})
    start = build_stemseg(arch)
    init_backbone(start.backbone, arch.detector_arch(), "imagenet")
    body, trained = start.backbone.body.state_dict(), model.backbone.body.state_dict()
    same = lambda a, b, keys: all(torch.equal(a[k].half(), b[k].half()) for k in keys)  # noqa: E731 (stored as fp16)
    assert same(body, trained, body)
    fpn, fpn_trained = start.backbone.fpn.state_dict(), model.backbone.fpn.state_dict()
    assert not same(fpn, fpn_trained, fpn)
    assert meta["data"]["video_held_aside"] == ["disk"] and meta["data"]["frozen_blocks"] == 18
    assert _train(tmp_path / "r2", *[a for o in video + imagenet[:2] + ["frozen_blocks=19"] for a in ("--set", o)]) == 2
    assert "frozen_blocks" in capsys.readouterr().err
