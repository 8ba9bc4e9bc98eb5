"""movseg demo: the node on the built-in scene over real ROS topics (see movseg_ros.ros.demo)."""

from __future__ import annotations

import argparse
import importlib


def add_arguments(p: argparse.ArgumentParser) -> None:
    importlib.import_module("movseg_ros.ros.demo").add_arguments(p)


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module("movseg_ros.ros.demo").run(args))
