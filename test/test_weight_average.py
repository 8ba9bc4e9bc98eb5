"""`movseg average`: the mean of runs of one model, refusing files that do not fit, named."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from movseg_ros.cli import main
from movseg_ros.model_files import ModelFileError, file_sha256, load_with_settings, save_with_settings
from movseg_ros.weight_average import average_checkpoints


def _net(seed: int, width: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(3, width), nn.BatchNorm1d(width))
    net[1].num_batches_tracked.fill_(seed + 1)
    return net


def _save(path: Path, seed: int, width: int = 4, arch: str = "toy", command: str = "") -> Path:
    return save_with_settings(path, arch, _net(seed, width), {"width": width}, {"command": command or f"train {seed}"})


def test_average_is_the_mean_of_the_floats_and_records_its_inputs(tmp_path: Path) -> None:
    a, b = _save(tmp_path / "a.pt", 0), _save(tmp_path / "b.pt", 1, command="train more")
    summary = average_checkpoints([a, b], tmp_path / "c.pt", "movseg average a b")
    settings, state, meta = load_with_settings(tmp_path / "c.pt", "toy", "test")
    _, sa, _ = load_with_settings(a, "toy", "test")
    _, sb, _ = load_with_settings(b, "toy", "test")
    for k in ("0.weight", "0.bias", "1.weight", "1.running_var"):
        assert torch.allclose(state[k], (sa[k] + sb[k]) / 2, atol=2e-3), k
    assert not torch.allclose(state["0.weight"], sa["0.weight"], atol=1e-2)  # it did move away from the first
    assert int(state["1.num_batches_tracked"]) == 1  # counters: the first file's
    assert settings == {"width": 4} and meta["command"] == "train more" and meta["average_command"] == "movseg average a b"
    assert [s["sha256"] for s in meta["averaged_from"]] == [file_sha256(a), file_sha256(b)]
    assert meta["stored_dtype"] == "float16" and summary["sha256"] == file_sha256(tmp_path / "c.pt")


@pytest.mark.parametrize("kwargs, words", [
    ({"width": 5}, "architecture settings differ"),
    ({"arch": "other"}, "architecture 'other'"),
])
def test_a_file_that_does_not_fit_is_named(tmp_path: Path, kwargs: dict, words: str) -> None:
    a, b = _save(tmp_path / "a.pt", 0), _save(tmp_path / "b.pt", 1, **kwargs)
    with pytest.raises(ModelFileError, match=words) as info:
        average_checkpoints([a, b], tmp_path / "c.pt")
    assert info.value.path == b and not (tmp_path / "c.pt").exists()


def test_other_keys_or_shapes_are_named(tmp_path: Path) -> None:
    a = _save(tmp_path / "a.pt", 0)
    data = torch.load(a, weights_only=True)
    data["state_dict"]["0.weight"] = torch.zeros(4, 2)
    torch.save(data, tmp_path / "shape.pt")
    with pytest.raises(ModelFileError, match=r"0\.weight is \(4, 2\)"):
        average_checkpoints([a, tmp_path / "shape.pt"], tmp_path / "c.pt")
    del data["state_dict"]["0.weight"]
    torch.save(data, tmp_path / "keys.pt")
    with pytest.raises(ModelFileError, match="not in both"):
        average_checkpoints([a, tmp_path / "keys.pt"], tmp_path / "c.pt")
    with pytest.raises(ValueError, match="at least two"):
        average_checkpoints([a], tmp_path / "c.pt")


def test_command_writes_the_average_and_refuses_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a, b = _save(tmp_path / "a.pt", 0), _save(tmp_path / "b.pt", 1)
    assert main(["average", str(a), str(b), "--out", str(tmp_path / "c.pt"), "--json", str(tmp_path / "c.json")]) == 0
    assert "mean of 2 files" in capsys.readouterr().out and (tmp_path / "c.json").is_file()
    (tmp_path / "bad.pt").write_bytes(a.read_bytes()[:200])  # truncated
    assert main(["average", str(a), str(tmp_path / "bad.pt"), "--out", str(tmp_path / "d.pt")]) == 2
    err = capsys.readouterr().err
    assert "bad.pt" in err and "truncated" in err and not (tmp_path / "d.pt").exists()
    assert main(["average", str(a), str(b), "--out", str(a)]) == 2
    assert "is one of the inputs" in capsys.readouterr().err


def test_the_shipped_stemseg_file_averaged_with_itself_is_itself(tmp_path: Path) -> None:
    from movseg_ros.paths import share_dir
    from movseg_ros.stem_seg.network import load_stemseg

    shipped = share_dir() / "models" / "stemseg_mobilenet_v2.pt"
    average_checkpoints([shipped, shipped], tmp_path / "same.pt")
    model, meta = load_stemseg(tmp_path / "same.pt")
    original, _ = load_stemseg(shipped)
    own = original.state_dict()
    assert all(torch.equal(v, own[k]) for k, v in model.state_dict().items())
    assert meta["command"].startswith("movseg train stemseg")


def _mpnet_file(path: Path, settings: dict, seed: int) -> Path:
    from movseg_ros.visual_memory.mpnet import ARCH, MPNet, MPNetArch

    torch.manual_seed(seed)
    return save_with_settings(path, ARCH, MPNet(MPNetArch(**settings)), settings, {"command": f"train {seed}"})


def test_a_file_recorded_before_a_setting_existed_averages_with_a_newer_one(tmp_path: Path) -> None:
    # an MP-Net file from before `motion_input` existed was built with its default ("flow"): the same model
    old = _mpnet_file(tmp_path / "old.pt", {"width": 16, "context": True}, 0)
    new = _mpnet_file(tmp_path / "new.pt", {"width": 16, "context": True, "motion_input": "flow"}, 1)
    average_checkpoints([old, new], tmp_path / "avg.pt")
    settings, _, _ = load_with_settings(tmp_path / "avg.pt", "mpnet", "test")
    assert settings["motion_input"] == "flow" and settings["width"] == 16
    other = _mpnet_file(tmp_path / "residual.pt", {"width": 16, "context": True, "motion_input": "residual"}, 2)
    with pytest.raises(ModelFileError, match="differ from .* in motion_input") as info:
        average_checkpoints([old, other], tmp_path / "bad.pt")
    assert info.value.path == other and not (tmp_path / "bad.pt").exists()
