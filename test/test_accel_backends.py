"""Backend selection, fall-back, the one build log line, and compiled vs eager agreement on the CPU."""

from __future__ import annotations

import logging

import pytest
import torch
from accel_helpers import image_pair, small_net

from movseg_ros.accel import AcceleratorConfig, AcceleratorConfigError, accelerate, select_backend
from movseg_ros.accel.backends import DISABLE_COMPILE_ENV, compile_available

CPU = torch.device("cpu")
# fp32 agreement of inductor's CPU kernels with eager PyTorch (stated in the README)
ATOL = RTOL = 1e-4


def _accel_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "movseg_ros.accel"]


def test_auto_on_cpu_picks_compile_when_a_compiler_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DISABLE_COMPILE_ENV, raising=False)
    assert compile_available(CPU) == (True, "")
    backend, reason = select_backend(AcceleratorConfig(), CPU)
    assert backend == "compile"
    assert reason.startswith("requested auto; tensorrt unavailable: needs a CUDA device (running on cpu)")
    assert "torch_tensorrt" in reason


def test_auto_with_compile_disabled_builds_eager_and_logs_one_line(monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(DISABLE_COMPILE_ENV, "1")
    caplog.set_level(logging.INFO, logger="movseg_ros.accel")
    net = small_net()
    x = image_pair(0)
    acc = accelerate(net, x, AcceleratorConfig(), name="flow")
    assert acc.backend == "eager"
    lines = _accel_lines(caplog)
    assert len(lines) == 1, lines
    assert lines[0].startswith("accelerator for flow: eager (requested auto; tensorrt unavailable: ")
    assert f"compile unavailable: disabled by {DISABLE_COMPILE_ENV}=1" in lines[0]
    with torch.inference_mode():
        assert torch.equal(acc(*x), net(*x))


def test_explicit_eager_is_not_second_guessed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DISABLE_COMPILE_ENV, raising=False)
    assert select_backend(AcceleratorConfig(accelerator="eager"), CPU) == ("eager", "requested eager")


def test_tensorrt_requested_on_cpu_falls_down_the_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DISABLE_COMPILE_ENV, raising=False)
    backend, reason = select_backend(AcceleratorConfig(accelerator="tensorrt"), CPU)
    assert backend == "compile"
    assert "requested tensorrt" in reason and "CUDA" in reason and "torch_tensorrt" in reason
    monkeypatch.setenv(DISABLE_COMPILE_ENV, "1")
    backend, reason = select_backend(AcceleratorConfig(accelerator="tensorrt"), CPU)
    assert backend == "eager"
    assert "tensorrt unavailable" in reason and "compile unavailable" in reason


@pytest.mark.parametrize("field,value", [("accelerator", "tpu"), ("precision", "int8"), ("device", "mps")])
def test_bad_settings_are_clear_errors(field: str, value: str) -> None:
    with pytest.raises(AcceleratorConfigError, match=f"{field} '{value}' is not one of"):
        AcceleratorConfig(**{field: value})


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(AcceleratorConfigError, match="no CUDA device"):
        AcceleratorConfig(device="cuda").resolve_device()


def test_fp16_on_cpu_runs_fp32_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DISABLE_COMPILE_ENV, "1")
    net = small_net()
    acc = accelerate(net, image_pair(0), AcceleratorConfig(precision="fp16", device="cpu"))
    assert acc.precision == "fp32"
    assert "fp16 needs CUDA" in acc.reason
    assert next(net.parameters()).dtype == torch.float32  # the caller's module is left as it was


def test_compiled_matches_eager_on_cpu(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """The one real inductor compile of this file: outputs on fresh inputs agree within ATOL/RTOL."""
    monkeypatch.delenv(DISABLE_COMPILE_ENV, raising=False)
    caplog.set_level(logging.INFO, logger="movseg_ros.accel")
    net = small_net(seed=1)
    acc = accelerate(net, image_pair(0), AcceleratorConfig(accelerator="compile", device="cpu"), name="net")
    assert acc.backend == "compile", acc.reason
    assert _accel_lines(caplog) == ["accelerator for net: compile (requested compile)"]
    for seed in (1, 2, 3):
        x = image_pair(seed)
        with torch.inference_mode():
            expected = net(*x)
        got = acc(*x)
        assert got.dtype == torch.float32 and got.shape == expected.shape
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=RTOL)


def test_compile_failing_at_first_call_falls_back_to_eager(monkeypatch: pytest.MonkeyPatch, tmp_path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A C++ compiler that fails (CXX=/bin/false for inductor): the build falls back to eager, with the reason."""
    import torch._inductor.config as inductor_config

    monkeypatch.delenv(DISABLE_COMPILE_ENV, raising=False)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))  # no cached kernels to reuse
    monkeypatch.setattr(inductor_config, "fx_graph_cache", False)
    monkeypatch.setattr(inductor_config.cpp, "cxx", (None, "/bin/false"))
    caplog.set_level(logging.INFO, logger="movseg_ros.accel")
    torch._dynamo.reset()
    net = small_net(seed=2, hidden=5)
    x = image_pair(4, 8, 8)
    try:
        acc = accelerate(net, x, AcceleratorConfig(accelerator="compile", device="cpu"), name="flow")
    finally:
        torch._dynamo.reset()
    assert acc.backend == "eager"
    assert "compile failed: " in acc.reason
    lines = _accel_lines(caplog)
    assert len(lines) == 1 and lines[0].startswith("accelerator for flow: eager (requested compile; compile failed: ")
    with torch.inference_mode():
        assert torch.equal(acc(*x), net(*x))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on the CI machines)")
@pytest.mark.parametrize("precision,tol", [("fp32", 1e-3), ("fp16", 2e-2)])
def test_compiled_matches_eager_on_cuda(precision: str, tol: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a GPU: torch.compile with CUDA graphs (and fp16) against eager fp32 on fresh inputs."""
    monkeypatch.delenv(DISABLE_COMPILE_ENV, raising=False)
    net = small_net(seed=3).cuda()
    acc = accelerate(net, [t.cuda() for t in image_pair(0)], AcceleratorConfig(accelerator="compile", precision=precision,
                                                                              device="cuda"))
    assert acc.backend == "compile" and acc.precision == precision and acc.cuda_graphs
    for seed in (1, 2):
        x = [t.cuda() for t in image_pair(seed)]
        with torch.inference_mode():
            expected = net(*x)
        first = acc(*x)
        acc(*image_pair(seed + 10))  # a replay overwrites the graph's output memory: ours was copied out
        torch.testing.assert_close(first, expected, atol=tol, rtol=tol)
