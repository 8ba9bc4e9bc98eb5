"""The three models of seed 000, composed from torchvision's detection parts.

- motion: a Mask R-CNN on the flow image (angle, magnitude, empty), one class "moving";
- appearance: an "objectness" Mask R-CNN on RGB, all categories merged into one;
- two-stream: both backbones; per FPN level [appearance, motion] is concatenated and reduced by a short
  convolution stack; the RPN and box head run on the fused features, the mask head on appearance
  features only. The objectness RPN and heads run on the same pass's appearance features and give the
  static-object predictions.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import AnchorGenerator, RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign

from movseg_ros.two_stream.arch import DetectorArch
from movseg_ros.two_stream.backbones import FPN_LEVELS, build_backbone, feature_names, norm_layer, renamed

RGB_MEAN, RGB_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
FLOW_MEAN, FLOW_STD = [0.5, 0.25, 0.0], [0.29, 0.25, 1.0]  # angle, magnitude, empty (see inputs.flow_tensor)
APPEARANCE_PREFIX = "a"  # appearance features ride next to the fused ones as a0..a3 for the mask head


def _anchors() -> AnchorGenerator:
    return AnchorGenerator(sizes=((16,), (32,), (64,), (128,), (256,)), aspect_ratios=((0.5, 1.0, 2.0),) * 5)


def _box_parts(arch: DetectorArch, names: list[str]) -> tuple[MultiScaleRoIAlign, TwoMLPHead, FastRCNNPredictor]:
    pool = MultiScaleRoIAlign(featmap_names=names, output_size=7, sampling_ratio=2)
    head = TwoMLPHead(arch.fpn_channels * 7 * 7, arch.representation_size)
    return pool, head, FastRCNNPredictor(arch.representation_size, 2)


def _mask_parts(arch: DetectorArch, names: list[str]) -> tuple[MultiScaleRoIAlign, MaskRCNNHeads, MaskRCNNPredictor]:
    pool = MultiScaleRoIAlign(featmap_names=names, output_size=14, sampling_ratio=2)
    norm = norm_layer(arch.norm) if arch.norm == "group_norm" else None
    head = MaskRCNNHeads(arch.fpn_channels, [arch.fpn_channels] * arch.mask_layers, 1, norm_layer=norm)
    return pool, head, MaskRCNNPredictor(arch.fpn_channels, arch.fpn_channels, 2)


def build_single_stream(arch: DetectorArch, stream: str, min_size: int = 240, max_size: int = 1333) -> MaskRCNN:
    """A one-class Mask R-CNN for `stream` "motion" (flow image) or "appearance" (RGB)."""
    mean, std = (FLOW_MEAN, FLOW_STD) if stream == "motion" else (RGB_MEAN, RGB_STD)
    names = feature_names()
    box_pool, box_head, box_predictor = _box_parts(arch, names)
    mask_pool, mask_head, mask_predictor = _mask_parts(arch, names)
    return MaskRCNN(build_backbone(arch), num_classes=None, min_size=min_size, max_size=max_size, image_mean=mean,
                    image_std=std, rpn_anchor_generator=_anchors(),
                    rpn_head=RPNHead(arch.fpn_channels, 3), box_roi_pool=box_pool, box_head=box_head,
                    box_predictor=box_predictor, mask_roi_pool=mask_pool, mask_head=mask_head,
                    mask_predictor=mask_predictor)


class FeatureFusion(nn.Module):
    """Per FPN level: concat(appearance, motion) -> a short conv stack back to the FPN width."""

    def __init__(self, channels: int, layers: int = 2) -> None:
        super().__init__()
        self.levels = nn.ModuleDict()
        for level in FPN_LEVELS:
            convs: list[nn.Module] = [nn.Conv2d(2 * channels, channels, 1)]
            for _ in range(layers - 1):
                convs += [nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 3, padding=1)]
            self.levels[level] = nn.Sequential(*convs)

    def forward(self, appearance: "OrderedDict[str, Tensor]", motion: "OrderedDict[str, Tensor]") -> "OrderedDict[str, Tensor]":
        return OrderedDict((k, self.levels[k](torch.cat([appearance[k], motion[k]], 1))) for k in appearance)

    @torch.no_grad()
    def pass_motion(self) -> None:
        """Weights that give each level the motion features (their positive part where a ReLU follows) and
        ignore appearance: a joint model that starts as the motion model's detector."""
        for convs in self.levels.values():
            for i, conv in enumerate(c for c in convs if isinstance(c, nn.Conv2d)):
                channels = conv.out_channels
                offset = channels if i == 0 else 0  # the first conv reads [appearance, motion]
                conv.weight.zero_()
                conv.bias.zero_()
                conv.weight[:, offset:offset + channels, conv.kernel_size[0] // 2, conv.kernel_size[1] // 2] = torch.eye(channels)


class TwoStreamMaskRCNN(nn.Module):
    """Input: 6-channel images (RGB, then the flow image), like a torchvision detector's list of tensors.

    Training returns the losses of the moving-object detector (fused RPN, fused box head, appearance mask
    head). Inference returns, per image, {"moving": {...}, "static": {...}}, each torchvision's
    {"boxes", "labels", "scores", "masks"} at the input size; "static" comes from the objectness heads
    (empty when `static_branch` is False).
    """

    def __init__(self, arch: DetectorArch, min_size: int = 240, max_size: int = 1333, static_branch: bool = True,
                 rpn_post_nms_test: int = 300, detections_per_img: int = 50) -> None:
        super().__init__()
        self.arch = arch
        self.static_branch = static_branch
        self.transform = GeneralizedRCNNTransform(min_size, max_size, RGB_MEAN + FLOW_MEAN, RGB_STD + FLOW_STD)
        self.appearance_backbone = build_backbone(arch)
        self.motion_backbone = build_backbone(arch)
        self.fusion = FeatureFusion(arch.fpn_channels, arch.fusion_layers)
        self.rpn = _rpn(arch, rpn_post_nms_test)
        box_pool, box_head, box_predictor = _box_parts(arch, feature_names())
        mask_pool, mask_head, mask_predictor = _mask_parts(
            arch, feature_names(APPEARANCE_PREFIX if arch.mask_features == "appearance" else ""))
        self.roi_heads = _roi_heads(box_pool, box_head, box_predictor, mask_pool, mask_head, mask_predictor,
                                    detections_per_img)
        # the objectness model's RPN and heads (static-object predictions), on appearance features
        self.static_rpn = _rpn(arch, rpn_post_nms_test)
        self.static_roi_heads = _roi_heads(*_box_parts(arch, feature_names()), *_mask_parts(arch, feature_names()),
                                           detections_per_img)
        self._features: Callable[[Tensor], tuple[Tensor, ...]] | None = None

    def use_features(self, extractor: Callable[[Tensor], tuple[Tensor, ...]] | None) -> None:
        """Run inference's backbones and fusion through `extractor` (e.g. an accelerated TwoStreamFeatures)."""
        self._features = extractor

    def features(self, tensors: Tensor) -> tuple["OrderedDict[str, Tensor]", "OrderedDict[str, Tensor]"]:
        """(appearance, fused) FPN features of a normalised 6-channel batch."""
        if self._features is not None and not self.training:
            out = self._features(tensors)
            return OrderedDict(zip(FPN_LEVELS, out[:len(FPN_LEVELS)])), OrderedDict(zip(FPN_LEVELS, out[len(FPN_LEVELS):]))
        appearance = self.appearance_backbone(tensors[:, :3])
        return appearance, self.fusion(appearance, self.motion_backbone(tensors[:, 3:]))

    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None) -> Any:
        if self.training and targets is None:
            raise ValueError("TwoStreamMaskRCNN needs targets in training mode")
        original_sizes = [tuple(img.shape[-2:]) for img in images]
        batch, targets = self.transform(images, targets)
        appearance, fused = self.features(batch.tensors)
        proposals, rpn_losses = self.rpn(batch, fused, targets)
        features = OrderedDict(fused)
        features.update(renamed(appearance, APPEARANCE_PREFIX))
        moving, head_losses = self.roi_heads(features, proposals, batch.image_sizes, targets)
        if self.training:
            return {**rpn_losses, **head_losses}
        moving = self.transform.postprocess(moving, batch.image_sizes, original_sizes)
        if self.static_branch:
            static_proposals, _ = self.static_rpn(batch, appearance)
            static, _ = self.static_roi_heads(appearance, static_proposals, batch.image_sizes)
            static = self.transform.postprocess(static, batch.image_sizes, original_sizes)
        else:
            static = [_empty(img) for img in images]
        return [{"moving": m, "static": s} for m, s in zip(moving, static)]


class TwoStreamFeatures(nn.Module):
    """Both backbones and the fusion as one static-shape module with a tuple out: what an accelerator builds."""

    def __init__(self, model: TwoStreamMaskRCNN) -> None:
        super().__init__()
        self.appearance_backbone = model.appearance_backbone
        self.motion_backbone = model.motion_backbone
        self.fusion = model.fusion

    def forward(self, tensors: Tensor) -> tuple[Tensor, ...]:
        appearance = self.appearance_backbone(tensors[:, :3])
        fused = self.fusion(appearance, self.motion_backbone(tensors[:, 3:]))
        return tuple(appearance[k] for k in FPN_LEVELS) + tuple(fused[k] for k in FPN_LEVELS)


def _rpn(arch: DetectorArch, post_nms_test: int) -> RegionProposalNetwork:
    return RegionProposalNetwork(_anchors(), RPNHead(arch.fpn_channels, 3), fg_iou_thresh=0.7, bg_iou_thresh=0.3,
                                 batch_size_per_image=256, positive_fraction=0.5,
                                 pre_nms_top_n={"training": 2000, "testing": 1000},
                                 post_nms_top_n={"training": 2000, "testing": post_nms_test}, nms_thresh=0.7)


def _roi_heads(box_pool, box_head, box_predictor, mask_pool, mask_head, mask_predictor, per_img: int) -> RoIHeads:
    return RoIHeads(box_pool, box_head, box_predictor, fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=512,
                    positive_fraction=0.25, bbox_reg_weights=None, score_thresh=0.05, nms_thresh=0.5,
                    detections_per_img=per_img, mask_roi_pool=mask_pool, mask_head=mask_head,
                    mask_predictor=mask_predictor)


def _empty(image: Tensor) -> dict[str, Tensor]:
    h, w = image.shape[-2:]
    return {"boxes": torch.zeros((0, 4)), "labels": torch.zeros((0,), dtype=torch.int64),
            "scores": torch.zeros((0,)), "masks": torch.zeros((0, 1, h, w))}


DETECTOR_SOURCES = ("appearance", "motion")  # which stream model the joint model's moving detector starts from


def two_stream_from_streams(model: TwoStreamMaskRCNN, motion: MaskRCNN | None, appearance: MaskRCNN | None,
                            detector_from: str = "appearance") -> None:
    """Seed 000's initialisation of the joint model: the motion backbone from the motion model; the appearance
    backbone, RPN, box and mask heads from the objectness (appearance) model, whose RPN and heads also
    become the static-object branch.

    With `detector_from="motion"` the moving branch's RPN and box head come from the motion model instead, and
    the fusion starts by passing the motion features on (their positive part where a ReLU follows), so the
    joint model starts as the motion model's detector and training adds appearance. The mask head comes from
    the motion model too when it reads the fused features (arch mask_features), else the objectness model's."""
    if detector_from not in DETECTOR_SOURCES:
        raise ValueError(f"detector_from '{detector_from}' is not one of {', '.join(DETECTOR_SOURCES)}")
    if motion is not None:
        model.motion_backbone.load_state_dict(motion.backbone.state_dict())
    if appearance is not None:
        model.appearance_backbone.load_state_dict(appearance.backbone.state_dict())
        for rpn in (model.rpn, model.static_rpn):
            rpn.load_state_dict(appearance.rpn.state_dict())
        for heads in (model.roi_heads, model.static_roi_heads):
            heads.load_state_dict(appearance.roi_heads.state_dict())
    if detector_from == "motion":
        if motion is None:
            raise ValueError("detector_from 'motion' needs the motion model")
        model.rpn.load_state_dict(motion.rpn.state_dict())
        model.roi_heads.box_head.load_state_dict(motion.roi_heads.box_head.state_dict())
        model.roi_heads.box_predictor.load_state_dict(motion.roi_heads.box_predictor.state_dict())
        if model.arch.mask_features == "fused":
            model.roi_heads.mask_head.load_state_dict(motion.roi_heads.mask_head.state_dict())
            model.roi_heads.mask_predictor.load_state_dict(motion.roi_heads.mask_predictor.state_dict())
        model.fusion.pass_motion()

