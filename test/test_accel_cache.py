"""The engine cache: miss then hit, keys that change with weights, shapes, precision and device,
corrupt files rebuilt; exercised with real exported programs (the artifact kind that runs on a CPU)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from accel_helpers import image_pair, small_net

from movseg_ros.accel import AcceleratorConfig, EngineCache, EngineCacheError, accelerate, model_hash
from movseg_ros.accel import exported


class _Counting:
    """build/load callables for get_or_build that count how often each ran."""

    def __init__(self, net: torch.nn.Module, inputs: list[torch.Tensor]) -> None:
        self.net, self.inputs = net, inputs
        self.builds = self.loads = 0

    def build(self):
        self.builds += 1
        return exported.export_program(self.net, self.inputs)

    def load(self, path: Path):
        self.loads += 1
        return exported.load_program(path)


def _key(cache: EngineCache, net: torch.nn.Module, inputs: list[torch.Tensor], precision: str = "fp32",
         device: str = "cpu") -> str:
    return cache.key(net, [x.shape for x in inputs], precision, device, "export")


def test_miss_writes_then_hit_loads_without_building(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path / "engines")
    net, x = small_net(), image_pair(0)
    key = _key(cache, net, x)
    first = _Counting(net, x)
    program, hit = cache.get_or_build(key, first.build, exported.save_program, first.load, suffix=".pt2")
    assert not hit and first.builds == 1 and first.loads == 0
    assert cache.path(key).is_file()
    second = _Counting(net, x)
    loaded, hit = cache.get_or_build(key, second.build, exported.save_program, second.load, suffix=".pt2")
    assert hit and second.builds == 0 and second.loads == 1
    probe = image_pair(5)
    with torch.inference_mode():
        torch.testing.assert_close(loaded.module()(*probe), net(*probe), atol=1e-6, rtol=1e-6)


def test_key_follows_weights_shapes_precision_and_device(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    net, x = small_net(seed=0), image_pair(0)
    key = _key(cache, net, x)
    assert _key(cache, small_net(seed=0), x) == key  # same class and weights: same key
    assert model_hash(small_net(seed=0)) == model_hash(net)
    changed = small_net(seed=0)
    with torch.no_grad():
        changed.head.weight[0, 0, 0, 0] += 1e-3  # one weight
    assert _key(cache, changed, x) != key
    assert _key(cache, net, image_pair(0, 16, 32)) != key
    assert _key(cache, net, x, precision="fp16") != key
    assert _key(cache, net, x, device="NVIDIA H100 80GB HBM3") != key
    assert cache.key(net, [t.shape for t in x], "fp32", "cpu", "tensorrt") != key


def test_changed_model_misses_and_rebuilds_through_accelerate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOVSEG_DISABLE_COMPILE", "1")
    config = AcceleratorConfig(accelerator="eager", cache_dir=str(tmp_path), device="cpu")
    net, x = small_net(), image_pair(0)
    a = accelerate(net, x, config, cache=True)
    b = accelerate(net, x, config, cache=True)
    assert (a.cache_hit, b.cache_hit) == (False, True) and a.cache_key == b.cache_key
    assert Path(b.cache_path).is_file() and Path(b.cache_path).with_suffix(".json").is_file()
    with torch.no_grad():
        net.head.bias[1] += 0.5
    c = accelerate(net, x, config, cache=True)
    assert not c.cache_hit and c.cache_key != a.cache_key
    probe = image_pair(7)
    with torch.inference_mode():
        torch.testing.assert_close(c(*probe), net(*probe), atol=1e-6, rtol=1e-6)  # the new weights, not the cached ones
    assert len(list(tmp_path.glob("*.pt2"))) == 2


def test_corrupt_file_is_deleted_and_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = EngineCache(tmp_path)
    net, x = small_net(), image_pair(0)
    key = _key(cache, net, x)
    cache.get_or_build(key, _Counting(net, x).build, exported.save_program, exported.load_program)
    path = cache.path(key)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])  # truncated
    again = _Counting(net, x)
    caplog.set_level(logging.WARNING, logger="movseg_ros.accel")
    program, hit = cache.get_or_build(key, again.build, exported.save_program, again.load)
    assert not hit and again.loads == 1 and again.builds == 1
    assert any(str(path) in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)
    exported.load_program(path)  # the rewritten file loads


def test_unwritable_cache_dir_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the cache directory should be")
    cache = EngineCache(blocker / "engines")
    net, x = small_net(), image_pair(0)
    with pytest.raises(EngineCacheError, match="not_a_dir"):
        cache.get_or_build(_key(cache, net, x), _Counting(net, x).build, exported.save_program, exported.load_program)


def test_default_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOVSEG_CACHE", str(tmp_path / "c"))
    assert AcceleratorConfig().cache_path() == tmp_path / "c"
    assert AcceleratorConfig(cache_dir=str(tmp_path / "d")).cache_path() == tmp_path / "d"
    monkeypatch.delenv("MOVSEG_CACHE")
    assert AcceleratorConfig().cache_path() == Path.home() / ".cache" / "movseg_ros" / "engines"
