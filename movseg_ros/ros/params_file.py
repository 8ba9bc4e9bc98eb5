"""The node's `--params-file` arguments checked before rclpy reads them.

rcl's own parse error is a traceback ending in "Couldn't parse params file ... at parser.c:271";
a missing or malformed file should instead stop the node with one line naming the file (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from movseg_ros.safe_text import printable


class ParamsFileError(ValueError):
    """A --params-file that is missing, unreadable, not YAML, or not shaped as ROS 2 parameters."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"params file '{printable(path)}': {problem}")
        self.path = path


def params_files(args: list[str]) -> list[str]:
    """The files given as `--params-file F` inside the `--ros-args ... [--]` sections of `args`."""
    files, in_ros, i = [], False, 0
    while i < len(args):
        arg = args[i]
        if arg == "--ros-args":
            in_ros = True
        elif arg == "--":
            in_ros = False
        elif in_ros and arg == "--params-file":
            if i + 1 >= len(args):
                raise ParamsFileError("", "--params-file is not followed by a file name")
            files.append(args[i + 1])
            i += 1
        i += 1
    return files


def check_params_file(path: str) -> None:
    """Raise ParamsFileError unless `path` is a readable YAML mapping of `node: ros__parameters: ...`."""
    file = Path(path)
    if not file.exists():
        raise ParamsFileError(path, "no such file")
    if not file.is_file():
        raise ParamsFileError(path, "is not a file")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as e:
        raise ParamsFileError(path, f"cannot be read: {printable(e.strerror or e)}") from None
    except UnicodeDecodeError as e:
        raise ParamsFileError(path, f"is not UTF-8 text (byte {e.start})") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise ParamsFileError(path, f"is not valid YAML{at}: {printable(problem)}") from None
    if not isinstance(data, dict) or not data or not _has_ros_parameters(data):
        raise ParamsFileError(path, "is not a ROS 2 parameters file (expected '<node name>:' then "
                                    "'ros__parameters:' with the parameters under it)")


def _has_ros_parameters(tree: Any) -> bool:
    """True when some mapping in `tree` (node names may nest namespaces) holds a `ros__parameters` mapping."""
    if not isinstance(tree, dict):
        return False
    if isinstance(tree.get("ros__parameters"), dict):
        return True
    return any(_has_ros_parameters(v) for v in tree.values())


def check_params_files(args: list[str]) -> None:
    """Check every --params-file in `args` (see check_params_file)."""
    for path in params_files(args):
        check_params_file(path)
