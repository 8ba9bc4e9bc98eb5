"""Synthetic objectness data in the COCO format: written, read back with CocoInstances, equal to the clips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from pycocotools import mask as mask_utils

from movseg_ros.cli import main
from movseg_ros.datasets.coco_instances import CocoInstances
from movseg_ros.synth import SynthConfigError, generate_clip, preset
from movseg_ros.synth.coco import write_coco
from movseg_ros.synth.dataset import detection_target

CONFIG = preset("motion").replace(width=96, height=64, n_moving=(1, 3), n_static=(1, 2))


def test_round_trip_gives_the_clips_instance_masks(tmp_path: Path) -> None:
    path = write_coco(CONFIG, tmp_path / "coco", images=3, base_seed=20)
    assert path == tmp_path / "coco" / "annotations.json"
    data = json.loads(path.read_text())
    assert [c["name"] for c in data["categories"]] == ["object"] and data["categories"][0]["id"] == 1
    ds = CocoInstances(path, tmp_path / "coco" / "images")
    assert len(ds) == 3
    moving_seen = set()
    for i, item in enumerate(ds):
        clip = generate_clip(CONFIG.replace(frames=2), 20 + i)
        truth = detection_target(clip, 0, include_static=True, min_pixels=16)
        assert item["image_id"] == 20 + i
        assert torch.equal(item["image"], torch.from_numpy(clip.images[0]).permute(2, 0, 1).float() / 255)
        assert len(truth["ids"]) > 0
        assert torch.equal(item["target"]["masks"], truth["masks"])
        assert torch.equal(item["target"]["boxes"], truth["boxes"])
        assert (item["target"]["labels"] == 1).all()
        anns = [a for a in data["annotations"] if a["image_id"] == 20 + i]
        assert [a["instance_id"] for a in anns] == truth["ids"].tolist()
        for ann, mask, moving in zip(anns, truth["masks"], truth["moving"]):
            assert isinstance(ann["segmentation"]["counts"], str) and ann["iscrowd"] == 0
            assert ann["moving"] == bool(moving) and ann["area"] == int(mask.sum())
            x0, y0, x1, y1 = truth["boxes"][anns.index(ann)].tolist()
            assert ann["bbox"] == [x0, y0, x1 - x0, y1 - y0]
            moving_seen.add(ann["moving"])
    assert moving_seen == {True, False}  # static objects are annotated too (objectness data)
    ids = [a["id"] for a in data["annotations"]]
    assert ids == list(range(1, len(ids) + 1))


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools, numpy 2
def test_small_instances_are_left_out_alike_by_writer_and_reader(tmp_path: Path) -> None:
    all_path = write_coco(CONFIG, tmp_path / "all", images=3, base_seed=20, min_pixels=1)
    big_path = write_coco(CONFIG, tmp_path / "big", images=3, base_seed=20, min_pixels=150)
    big = json.loads(big_path.read_text())["annotations"]
    every = json.loads(all_path.read_text())["annotations"]
    assert 0 < len(big) < len(every) and all(a["area"] >= 150 for a in big)
    rle = big[0]["segmentation"]
    decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    assert int(decoded.sum()) == big[0]["area"]
    read = CocoInstances(all_path, tmp_path / "all" / "images", min_area=150)
    assert sum(len(item["target"]["boxes"]) for item in read) == len(big)


def test_bad_writer_settings_are_errors(tmp_path: Path) -> None:
    for kwargs, name in [({"images": 0}, "images"), ({"images": 2, "base_seed": -1}, "base_seed"),
                         ({"images": 2, "min_pixels": 0}, "min_pixels")]:
        with pytest.raises(SynthConfigError, match=name):
            write_coco(CONFIG, tmp_path / "x", **kwargs)


def test_command_writes_and_summarises(tmp_path: Path, capsys) -> None:
    out = tmp_path / "data"
    assert main(["synth", "coco", str(out), "--images", "2", "--width", "96", "--height", "64", "--base-seed", "3",
                 "--json", str(tmp_path / "c.json")]) == 0
    assert sorted(p.name for p in (out / "images").iterdir()) == ["000003.png", "000004.png"]
    summary = json.loads((tmp_path / "c.json").read_text())
    anns = json.loads((out / "annotations.json").read_text())["annotations"]
    assert summary["objects"] == len(anns) > 0 and summary["moving"] == sum(a["moving"] for a in anns)
    text = capsys.readouterr().out
    assert str(out / "annotations.json") in text and f"{len(anns)} objects" in text


@pytest.mark.parametrize("argv, message", [
    (["coco", "OUTDIR", "--images", "0"], "--images"),
    (["coco", "--images", "2"], "output folder"),
    (["gallery", "OUTDIR"], "only for coco"),
])
def test_bad_command_input_is_a_clear_error(argv: list[str], message: str, tmp_path: Path, capsys) -> None:
    argv = [str(tmp_path / "o") if a == "OUTDIR" else a for a in argv]
    assert main(["synth", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("movseg synth: error:") and message in err
