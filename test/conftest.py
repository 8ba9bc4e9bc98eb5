"""Shared fixtures: a per-run ROS domain, rclpy in the test process, the node's environment, tiny weights,
one torch thread for a module, and a one-sequence DAVIS folder."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # test helpers import as plain modules


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ros: integration test with real rclpy nodes in separate processes")


@pytest.fixture(scope="session")
def ros_domain() -> int:
    """A random ROS_DOMAIN_ID for this test run, so parallel runs on one machine do not meet."""
    return random.SystemRandom().randint(1, 200)


@pytest.fixture(scope="session")
def node_env(ros_domain: int) -> dict[str, str]:
    """Environment for node processes: the run's domain, localhost discovery, the SHM profile."""
    from ros_helpers import ros_env

    return ros_env(ros_domain)


@pytest.fixture(scope="session")
def rclpy_session(ros_domain: int):
    """rclpy initialised in the test process on the run's domain."""
    import rclpy
    from ros_helpers import init_rclpy

    init_rclpy(ros_domain)
    yield
    rclpy.try_shutdown()


@pytest.fixture(scope="session")
def tiny_two_stream(tmp_path_factory):
    """Seed-000 motion, appearance and joint weights from 3 real training steps each on tiny data."""
    from two_stream_helpers import make_tiny_weights

    return make_tiny_weights(tmp_path_factory.mktemp("two_stream"))


@pytest.fixture(scope="session")
def tiny_stemseg(tmp_path_factory):
    """STEm-Seg weights from 3 real training steps on tiny synthetic and animated clips."""
    from movseg_ros.cli import main

    out = tmp_path_factory.mktemp("stemseg")
    config = Path(__file__).resolve().parent.parent / "config" / "train_stemseg_tiny.yaml"
    assert main(["train", "stemseg", "--config", str(config), "--out-dir", str(out), "--set", f"export={out / 'w.pt'}"]) == 0
    return out / "w.pt"


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module (use with pytest.mark.usefixtures): tiny networks gain nothing
    from more, and stall badly on a shared CPU. The previous count comes back after the module."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def davis_square(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One DAVIS-2016-layout sequence: 3 frames of 96x64, a square moving right (255 in its annotation)."""
    from report_helpers import write_davis_square

    return write_davis_square(tmp_path_factory.mktemp("davis"))
