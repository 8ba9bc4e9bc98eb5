"""FPN backbones built from torchvision's classification networks. Nothing is downloaded: they start random, or
MobileNetV2 from the ImageNet features the set-up installs (`init_backbone(..., "imagenet")`)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

from torch import nn
from torchvision.models import mobilenet_v2, mobilenet_v3_large, resnet18, resnet50
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

from movseg_ros.two_stream.arch import ArchError, DetectorArch

FPN_LEVELS = ("0", "1", "2", "3", "pool")  # strides 4, 8, 16, 32, 64
V2_STAGE_ENDS = (3, 6, 13, 17)  # MobileNetV2 features: last block at strides 4, 8, 16, 32 (24, 32, 96, 320 ch)
V2_DEPTH = V2_STAGE_ENDS[-1] + 1
INITS = ("none", "imagenet")


def norm_layer(norm: str) -> Callable[[int], nn.Module]:
    """Group norm (8 groups) trains from scratch at batch 1-2; frozen BN is what pretrained weights expect."""
    if norm == "group_norm":
        return lambda channels: nn.GroupNorm(8, channels)
    if norm == "frozen_bn":
        return FrozenBatchNorm2d
    return nn.BatchNorm2d


def build_backbone(arch: DetectorArch) -> BackboneWithFPN:
    """A 3-channel image -> FPN features at strides 4..64 (keys FPN_LEVELS), arch.fpn_channels wide."""
    norm = norm_layer(arch.norm)
    if arch.backbone in ("resnet18", "resnet50"):
        net = (resnet18 if arch.backbone == "resnet18" else resnet50)(weights=None, norm_layer=norm)
        widths = [64, 128, 256, 512] if arch.backbone == "resnet18" else [256, 512, 1024, 2048]
        return_layers = {f"layer{i + 1}": str(i) for i in range(4)}
        return BackboneWithFPN(net, return_layers, widths, arch.fpn_channels, extra_blocks=LastLevelMaxPool())
    if arch.backbone == "mobilenet_v2":
        # up to the last inverted residual (320 channels, stride 32); torchvision's 1280-wide 1x1 conv is left out
        net = mobilenet_v2(weights=None, norm_layer=norm).features[:V2_DEPTH]
        ends = list(V2_STAGE_ENDS)
    else:
        net = mobilenet_v3_large(weights=None, norm_layer=norm).features
        ends = _stride_stage_ends(net)
    widths = [_out_channels(net[i]) for i in ends]
    return_layers = {str(i): str(level) for level, i in enumerate(ends)}
    return BackboneWithFPN(net, return_layers, widths, arch.fpn_channels, extra_blocks=LastLevelMaxPool())


def init_backbone(backbone: BackboneWithFPN, arch: DetectorArch, init: str) -> str:
    """Fill the backbone's body from pretrained weights: `none` keeps the random start, `imagenet` loads the
    installed ImageNet MobileNetV2 (every key and shape checked). Returns what was loaded, for the card."""
    if init not in INITS:
        raise ArchError(f"init '{init}' is not one of {', '.join(INITS)}")
    if init == "none":
        return "random"
    check_imagenet_arch(arch)
    from movseg_ros.pretrained import IMAGENET_MOBILENET_V2, load_imagenet_mobilenet_v2

    path = load_imagenet_mobilenet_v2(backbone.body)
    source = IMAGENET_MOBILENET_V2
    return f"imagenet: {path.name} from {source.distribution}=={source.version} ({source.licence})"


def check_imagenet_arch(arch: DetectorArch) -> None:
    """ImageNet weights are a batch-normalised MobileNetV2: any other backbone or norm cannot take them."""
    if arch.backbone != "mobilenet_v2" or arch.norm == "group_norm":
        raise ArchError(f"init imagenet needs backbone mobilenet_v2 with norm frozen_bn or batch_norm "
                        f"(the installed ImageNet weights); got backbone {arch.backbone}, norm {arch.norm}")


def _stride_stage_ends(features: nn.Sequential) -> list[int]:
    """Indices of the last block at strides 4, 8, 16 and 32 (the block before each downsampling, and the end)."""
    downsampling = [i for i, block in enumerate(features) if getattr(block, "_is_cn", False)]
    # block 0 (the stem) halves, then each _is_cn block halves again: the stride-4 stage ends before the 2nd
    ends = [i - 1 for i in downsampling[1:]] + [len(features) - 1]
    if len(ends) != 4:
        raise RuntimeError(f"unexpected MobileNetV3 layout: downsampling blocks at {downsampling}")
    return ends


def _out_channels(block: nn.Module) -> int:
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels


def feature_names(prefix: str = "") -> list[str]:
    """The FPN levels RoI pooling reads (not the extra max-pool level), optionally renamed."""
    return [prefix + k for k in FPN_LEVELS[:4]]


def renamed(features: "OrderedDict", prefix: str) -> "OrderedDict":
    return OrderedDict((prefix + k, v) for k, v in features.items())
