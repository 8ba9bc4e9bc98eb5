"""Salient-object maps: the U^2-Net-p teacher (ONNX) and our distilled MobileNetV2 network."""
