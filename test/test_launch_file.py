"""launch/segment.launch.py: launch/launch_ros have no wheels here, so the file is checked by parsing it."""

from __future__ import annotations

import ast
from pathlib import Path

LAUNCH = Path(__file__).resolve().parent.parent / "launch" / "segment.launch.py"


def strings(tree: ast.AST) -> set[str]:
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def call_names(tree: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Call):
            f = n.func
            out.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
    return out


def test_launch_file_parses_and_defines_generate_launch_description() -> None:
    tree = ast.parse(LAUNCH.read_text())
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions


def test_launch_file_starts_the_segment_node_with_the_installed_config() -> None:
    tree = ast.parse(LAUNCH.read_text())
    text = strings(tree)
    assert {"movseg_ros", "segment_node", "movseg", "segment.yaml", "fastdds_shm.xml"} <= text
    assert {"image_topic", "params_file", "use_shm_profile", "/camera/image_raw", "image", "image/compressed"} <= text
    assert "FASTDDS_DEFAULT_PROFILES_FILE" in text
    calls = call_names(tree)
    assert {"LaunchDescription", "DeclareLaunchArgument", "Node", "SetEnvironmentVariable",
            "get_package_share_directory", "LaunchConfiguration"} <= calls


def test_launch_file_references_files_that_exist_in_the_package() -> None:
    root = LAUNCH.parent.parent
    assert (root / "config" / "segment.yaml").is_file()
    assert (root / "config" / "fastdds_shm.xml").is_file()
