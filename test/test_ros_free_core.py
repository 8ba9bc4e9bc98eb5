"""The core and the `movseg` command work where ROS is not installed (a training server)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2

from movseg_ros.scene import SceneConfig, make_scene

# Runs in a fresh interpreter in which importing anything of ROS fails, as on a machine without it.
BLOCK_ROS = """
import importlib.abc, sys
class NoRos(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('rclpy', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs', 'rcl_interfaces', 'builtin_interfaces'):
            raise ImportError(f'no ROS here: {name}')
sys.meta_path.insert(0, NoRos())
import pkgutil, importlib, movseg_ros
core = [m.name for m in pkgutil.walk_packages(movseg_ros.__path__, 'movseg_ros.') if '.ros' not in m.name]
for name in core:
    importlib.import_module(name)
from movseg_ros.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_without_ros(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_ROS, *args], capture_output=True, text=True, timeout=120)


def test_every_core_module_imports_and_help_works_without_ros() -> None:
    done = run_without_ros("--help")
    assert done.returncode == 0, done.stderr
    for command in ("run", "demo", "eval", "bench"):
        assert command in done.stdout


def test_movseg_run_works_without_ros(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, image in enumerate(make_scene(SceneConfig(width=160, height=120, frames=6)).frames):
        cv2.imwrite(str(folder / f"{i:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    done = run_without_ros("run", str(folder), "--out", str(tmp_path / "out"), "--json")
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "out" / "labels").glob("*.png"))) == 6
