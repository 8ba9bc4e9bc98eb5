"""best.yaml: the chosen settings over the base, as a pipeline YAML that `--config` loads back exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from movseg_ros.config_io import expand_dotted
from movseg_ros.pipeline import PipelineConfig
from movseg_ros.tuning.space import flat_settings


def settings_over_defaults(base: PipelineConfig, settings: dict[str, Any]) -> dict[str, Any]:
    """Dotted settings that rebuild `base` with `settings` over it: the pipeline's name, the base's
    differences from the defaults, then the searched settings."""
    defaults, own = flat_settings(PipelineConfig()), flat_settings(base)
    changed = {k: v for k, v in own.items() if k == "pipeline" or v != defaults[k]}
    return changed | settings


def write_config_yaml(path: Path, base: PipelineConfig, settings: dict[str, Any], header: str) -> Path:
    """Write the nested YAML of `settings_over_defaults` under a comment header; returns the path."""
    tree = expand_dotted(settings_over_defaults(base, settings))
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(comment + yaml.safe_dump(tree, sort_keys=False, default_flow_style=False), encoding="utf-8")
    return path
