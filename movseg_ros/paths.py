"""Where the package's shared files (config, launch, models) are, installed or in a checkout."""

from __future__ import annotations

import sys
from pathlib import Path

PACKAGE = "movseg_ros"


def share_dir() -> Path:
    """share/movseg_ros of a colcon or pip install, else the source checkout's root."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except Exception:  # noqa: BLE001 - not a ROS install, or the package is not indexed there
        pass
    installed = Path(sys.prefix) / "share" / PACKAGE
    if (installed / "config").is_dir():
        return installed
    return Path(__file__).resolve().parent.parent


def config_file(name: str = "segment.yaml") -> Path:
    """A file from config/, e.g. the node's default parameters."""
    path = share_dir() / "config" / name
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found (is movseg_ros installed?)")
    return path


def weights_file(setting: str, shipped: str) -> Path:
    """A weights setting as a path: the given file, or "" for the package's shipped models/`shipped`."""
    return Path(setting) if setting else share_dir() / "models" / shipped
