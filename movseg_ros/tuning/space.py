"""The search space: which pipeline settings a search varies and over what values, read from YAML.

    geometric.residual_k: {low: 1.5, high: 6.0}            # uniform float
    geometric.refine_eps: {low: 0.001, high: 0.004, log: true}
    tracker.t_inactive:   {low: 5, high: 20, int: true}
    geometric.refine_radius: {choices: [0, 4, 8, 16]}
Keys are dotted setting names (or nested sections: `tracker: {alpha_low: {low: .., high: ..}}`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from movseg_ros.pipeline import PipelineConfig
from movseg_ros.tuning.errors import TuneError

SPEC_KEYS = frozenset({"low", "high", "log", "int", "choices"})
SIGNIFICANT_DIGITS = 4  # sampled floats are rounded so trial logs and best.yaml stay readable


@dataclass(frozen=True)
class Dimension:
    """One searched setting: a float or int range (optionally log-spaced), or a list of choices."""

    name: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()

    @property
    def kind(self) -> str:
        return "choice" if self.choices else "int" if self.integer else "float"

    def sample(self, rng: np.random.Generator) -> Any:
        """A value drawn uniformly (in log space where `log`) from the range, or one of the choices."""
        if self.choices:
            return self.choices[int(rng.integers(len(self.choices)))]
        return self.from_unit(float(rng.random()))

    def perturb(self, value: Any, rng: np.random.Generator, scale: float) -> Any:
        """A value near `value`: a normal step of `scale` of the range; a choice changes with probability `scale`."""
        if self.choices:
            return self.sample(rng) if rng.random() < scale else value
        return self.from_unit(float(np.clip(self.unit(value) + scale * rng.normal(), 0.0, 1.0)))

    def unit(self, value: float) -> float:
        """Where `value` lies along the range, 0 at low and 1 at high (log-scaled where `log`); a value outside
        the range (a base setting the space does not cover) counts as the nearer end."""
        lo, hi = self._span()
        value = min(max(float(value), self.low), self.high)
        x = math.log(value) if self.log else value
        return min(max((x - lo) / (hi - lo), 0.0), 1.0)

    def from_unit(self, u: float) -> Any:
        """The range's value at unit position `u` (an int for int ranges, floats to 4 significant digits)."""
        lo, hi = self._span()
        x = lo + u * (hi - lo)
        x = math.exp(x) if self.log else x
        if self.integer:
            return int(min(max(math.floor(x + 0.5), self.low), self.high))
        return min(max(float(f"{x:.{SIGNIFICANT_DIGITS}g}"), self.low), self.high)

    def _span(self) -> tuple[float, float]:
        """The sampled interval; an int range reaches half a step past each end so every int is equally likely."""
        lo, hi = (self.low - 0.5, self.high + 0.5) if self.integer else (self.low, self.high)
        return (math.log(lo), math.log(hi)) if self.log else (lo, hi)

    def probes(self) -> tuple[Any, ...]:
        """The values a space check tries: both ends of a range, or every choice."""
        return self.choices or ((int(self.low), int(self.high)) if self.integer else (self.low, self.high))

    def as_dict(self) -> dict[str, Any]:
        if self.choices:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high} | ({"log": True} if self.log else {}) | (
            {"int": True} if self.integer else {})


@dataclass(frozen=True)
class SearchSpace:
    """The searched settings, in the order the space file gives them."""

    dimensions: tuple[Dimension, ...]
    source: str = ""  # the file it came from, for messages

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.dimensions)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {d.name: d.sample(rng) for d in self.dimensions}

    def perturb(self, settings: dict[str, Any], rng: np.random.Generator, scale: float) -> dict[str, Any]:
        return {d.name: d.perturb(settings[d.name], rng, scale) for d in self.dimensions}

    def values_in(self, config: PipelineConfig) -> dict[str, Any]:
        """The searched settings' values in `config` (the base trial's settings)."""
        flat = flat_settings(config)
        return {name: flat[name] for name in self.names}

    def as_dict(self) -> dict[str, Any]:
        return {d.name: d.as_dict() for d in self.dimensions}


def flat_settings(config: PipelineConfig) -> dict[str, Any]:
    """Every setting of `config` by dotted name ('tracker.alpha_low': 0.7, ...)."""
    out: dict[str, Any] = {}

    def walk(d: dict[str, Any], prefix: str) -> None:
        for key, value in d.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                out[f"{prefix}{key}"] = value

    walk(config.to_dict(), "")
    return out


def apply_settings(base: PipelineConfig, settings: dict[str, Any]) -> PipelineConfig:
    """`base` with dotted `settings` over it; ValueError (naming the setting) for a bad name, type or value."""
    tree = base.to_dict()
    for name, value in settings.items():
        *parents, leaf = name.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"setting '{name}': '{part}' is a setting, not a section")
        node[leaf] = value
    try:
        return PipelineConfig.from_dict(tree)
    except TypeError as e:
        raise ValueError(str(e)) from None


def load_space(path: Path, base: PipelineConfig) -> SearchSpace:
    """The space in a YAML file, checked against `base`: TuneError naming the file and key when a name is
    not a pipeline setting, a range is not sane, or a value can never make a valid config."""
    where = f"search space {path}"
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise TuneError(f"{where}: no such file") from None
    except yaml.YAMLError as e:
        raise TuneError(f"{where} is not valid YAML: {e}") from None
    if not isinstance(data, dict) or not data:
        raise TuneError(f"{where}: expected a mapping of setting names to ranges or choices, got "
                        f"{'nothing' if not data else type(data).__name__}")
    specs = _specs(data, "", where)
    flat = flat_settings(base)
    dims = tuple(_dimension(name, spec, flat, base, where) for name, spec in specs.items())
    space = SearchSpace(dims, str(path))
    for dim in dims:
        for which, value in zip(("choice",) * len(dim.choices) if dim.choices else ("low", "high"), dim.probes()):
            problem = _infeasible(space, base, dim, value)
            if problem:
                raise TuneError(f"{where}: {dim.name}: {which} {value!r} never makes a valid config: {problem}")
    return space


def _specs(data: dict[Any, Any], prefix: str, where: str) -> dict[str, dict[str, Any]]:
    """Dotted name -> its spec mapping, nested sections flattened."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and set(value) <= SPEC_KEYS:
            specs = {name: value}
        elif isinstance(value, dict) and value and not set(value) & SPEC_KEYS:
            specs = _specs(value, f"{name}.", where)
        elif isinstance(value, dict) and value:
            unknown = sorted(str(k) for k in set(value) - SPEC_KEYS)
            raise TuneError(f"{where}: {name}: unknown key(s) {unknown}; a setting takes "
                            f"{{low, high[, log][, int]}} or {{choices: [...]}}")
        else:
            raise TuneError(f"{where}: {name}: expected {{low: a, high: b}} or {{choices: [...]}}, got {value!r}")
        for n, spec in specs.items():
            if n in out:
                raise TuneError(f"{where}: {n} is given twice")
            out[n] = spec
    return out


def _dimension(name: str, spec: dict[str, Any], flat: dict[str, Any], base: PipelineConfig, where: str) -> Dimension:
    """One spec checked for sanity and against the setting's type."""
    def fail(problem: str) -> TuneError:
        return TuneError(f"{where}: {name}: {problem}")

    if name not in flat:
        if any(k.startswith(f"{name}.") for k in flat):
            raise fail("is a section of settings, not one setting")
        try:
            apply_settings(base, {name: 0})
        except ValueError as e:
            raise fail(str(e)) from None
        raise fail("is not a pipeline setting")
    kind = type(flat[name])
    if "choices" in spec:
        if set(spec) != {"choices"}:
            raise fail("give either choices or low/high, not both")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise fail(f"choices must be a non-empty list, got {choices!r}")
        if len({repr(c) for c in choices}) != len(choices):
            raise fail(f"choices repeat a value: {choices}")
        return Dimension(name, choices=tuple(choices))
    if "low" not in spec or "high" not in spec:
        raise fail("a range needs both low and high")
    low, high, log, integer = spec["low"], spec["high"], spec.get("log", False), spec.get("int", False)
    for flag, value in (("log", log), ("int", integer)):
        if not isinstance(value, bool):
            raise fail(f"{flag} must be true or false, got {value!r}")
    for end, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise fail(f"{end} must be a number, got {value!r}")
        if integer and float(value) != int(value):
            raise fail(f"{end} must be a whole number for an int range, got {value!r}")
    if not low < high:
        raise fail(f"low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise fail(f"a log range needs low > 0, got {low}")
    if kind in (bool, str):
        raise fail(f"is a {kind.__name__} setting: search it with choices: [...]")
    if kind is int and not integer:
        raise fail("is an int setting: add int: true to the range, or give choices")
    return Dimension(name, float(low) if not integer else int(low), float(high) if not integer else int(high),
                     log, integer)


def _infeasible(space: SearchSpace, base: PipelineConfig, dim: Dimension, value: Any) -> str | None:
    """Why `dim` = `value` makes no valid config over the base, alone or with one other searched setting
    at one of its probes (so alpha_low's high end may need alpha_high's); None when some such config is valid."""
    try:
        apply_settings(base, {dim.name: value})
        return None
    except ValueError as e:
        problem = str(e)
    for other in space.dimensions:
        if other.name == dim.name:
            continue
        for probe in other.probes():
            try:
                apply_settings(base, {dim.name: value, other.name: probe})
                return None
            except ValueError:
                pass
    return problem
