"""The TensorRT backend where it cannot run (no CUDA, no torch_tensorrt here): it reports itself
unavailable with the reason and the build falls down the chain. Its build/save/load path follows the
torch-tensorrt documentation and was not run (ENVIRONMENT.md: TensorRT cannot be installed)."""

from __future__ import annotations

import importlib.util
import logging

import pytest
import torch
from accel_helpers import image_pair, small_net

from movseg_ros.accel import AcceleratorConfig, accelerate
from movseg_ros.accel import tensorrt_backend

HAS_TRT = importlib.util.find_spec("torch_tensorrt") is not None


@pytest.mark.skipif(HAS_TRT, reason="torch_tensorrt is installed here")
def test_unavailable_without_torch_tensorrt_names_the_module() -> None:
    ok, why = tensorrt_backend.tensorrt_available(torch.device("cuda"))
    assert not ok and why == "No module named 'torch_tensorrt'"
    with pytest.raises(ImportError, match="torch_tensorrt"):
        tensorrt_backend.build_engine(small_net(), image_pair(0), torch.float16)


def test_unavailable_on_the_cpu_whatever_is_installed() -> None:
    ok, why = tensorrt_backend.tensorrt_available(torch.device("cpu"))
    assert not ok and why.startswith("needs a CUDA device (running on cpu)")


def test_requested_tensorrt_builds_the_next_backend_and_says_why(tmp_path, monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("MOVSEG_DISABLE_COMPILE", "1")
    caplog.set_level(logging.INFO, logger="movseg_ros.accel")
    net, x = small_net(), image_pair(0)
    acc = accelerate(net, x, AcceleratorConfig(accelerator="tensorrt", precision="fp16", cache_dir=str(tmp_path)))
    assert acc.backend == "eager" and acc.precision == "fp32"
    lines = [r.getMessage() for r in caplog.records if r.name == "movseg_ros.accel"]
    assert len(lines) == 1
    assert lines[0].startswith("accelerator for flow: eager (requested tensorrt; tensorrt unavailable: needs a CUDA device")
    assert "compile unavailable: disabled by MOVSEG_DISABLE_COMPILE=1" in lines[0]
    assert not any(tmp_path.iterdir())  # no engine file was written for a backend that did not run
    with torch.inference_mode():
        assert torch.equal(acc(*x), net(*x))
