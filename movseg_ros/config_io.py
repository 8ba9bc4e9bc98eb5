"""Pipeline settings from YAML: plain nested or dotted keys, or the node's ROS params file."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from movseg_ros.pipeline import PipelineConfig


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The mapping at the top of a YAML file ({} for an empty file); errors name the file."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"config {path}: no such file") from None
    except yaml.YAMLError as e:
        raise ValueError(f"config {path} is not valid YAML: {e}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ValueError(f"config {path}: expected a mapping at the top, got {type(data).__name__}")
    return data


def load_pipeline_config(path: Path) -> PipelineConfig:
    """PipelineConfig from a YAML file: its nested (or dotted) fields, or a node's ROS params file.

    From a ROS params file ({node: {ros__parameters: {...}}}) only the pipeline's own settings
    are taken (pipeline, buffer_length, geometric.*, tracker.*); node settings such as qos are skipped.
    """
    data = read_yaml_mapping(path)
    ros = _ros_parameters(data)
    tree = expand_dotted(ros if ros is not None else data)
    if ros is not None:
        known = {f.name for f in dataclasses.fields(PipelineConfig)}
        tree = {k: v for k, v in tree.items() if k in known}
    try:
        return PipelineConfig.from_dict(tree)
    except (TypeError, ValueError) as e:
        raise ValueError(f"config {path}: {e}") from None


def expand_dotted(d: dict[str, Any]) -> dict[str, Any]:
    """{'tracker.alpha_low': 0.6, 'tracker': {'t_inactive': 5}} -> {'tracker': {'alpha_low': 0.6, 't_inactive': 5}}."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            value = expand_dotted(value)
        *parents, leaf = str(key).split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"setting '{key}' conflicts with a plain value at '{part}'")
        if isinstance(value, dict) and isinstance(node.get(leaf), dict):
            node[leaf] = _merge(node[leaf], value)
        else:
            node[leaf] = value
    return out


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _ros_parameters(data: dict[str, Any]) -> dict[str, Any] | None:
    """The ros__parameters section of a params file (the movseg node's if several), else None."""
    sections = {str(k): v["ros__parameters"] for k, v in data.items() if isinstance(v, dict) and "ros__parameters" in v}
    if not sections:
        return None
    name = next((k for k in sections if k.rstrip("/").split("/")[-1] == "movseg"), next(iter(sections)))
    return sections[name] or {}
