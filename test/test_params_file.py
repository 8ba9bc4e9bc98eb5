"""--params-file checked before rclpy reads it: a missing or malformed file is one line and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from movseg_ros.ros.params_file import ParamsFileError, check_params_file, check_params_files, params_files

ROOT = Path(__file__).resolve().parent.parent


def test_params_files_are_found_only_inside_ros_args() -> None:
    args = ["--params-file", "not-ros.yaml", "--ros-args", "-r", "a:=b", "--params-file", "one.yaml",
            "-p", "x:=1", "--params-file", "two.yaml", "--", "--params-file", "app.yaml"]
    assert params_files(args) == ["one.yaml", "two.yaml"]
    with pytest.raises(ParamsFileError, match="not followed by a file name"):
        params_files(["--ros-args", "--params-file"])


@pytest.mark.parametrize("content, problem", [
    (None, "no such file"),
    ("movseg:\n  ros__parameters:\n    pipeline: [unclosed\n", "not valid YAML at line 4"),
    ("- a\n- b\n", "not a ROS 2 parameters file"),
    ("movseg:\n  pipeline: geometric\n", "not a ROS 2 parameters file"),
    ("", "not a ROS 2 parameters file"),
    (b"movseg:\n  ros__parameters:\n    pipeline: \xff\xfe\n", "not UTF-8"),
], ids=["missing", "bad-yaml", "a-list", "no-ros-parameters", "empty", "binary"])
def test_bad_params_file_names_the_file_and_the_problem(tmp_path, content, problem) -> None:
    path = tmp_path / "params.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ParamsFileError) as err:
        check_params_file(str(path))
    assert str(path) in str(err.value) and problem in str(err.value)


def test_the_shipped_params_files_pass() -> None:
    files = sorted((ROOT / "config").glob("*.yaml"))
    shipped = [f for f in files if "ros__parameters" in f.read_text()]
    assert shipped, files
    check_params_files([a for f in shipped for a in ("--ros-args", "--params-file", str(f))])


@pytest.mark.ros
@pytest.mark.timeout(120)
@pytest.mark.parametrize("content", [None, "movseg:\n  ros__parameters:\n    pipeline: [unclosed\n"],
                         ids=["missing", "malformed"])
def test_node_exits_2_with_one_line_naming_the_params_file(tmp_path, node_env, content) -> None:
    path = tmp_path / "bad params.yaml"
    if content is not None:
        path.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "movseg_ros.ros.segment_node", "--ros-args", "--params-file", str(path)],
                          env=node_env, capture_output=True, text=True, timeout=60)
    out = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 2, out
    assert "Traceback" not in out and len(out.splitlines()) == 1, out
    assert str(path) in out and "params file" in out, out
