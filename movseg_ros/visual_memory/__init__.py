"""Seed 003's visual-memory pipeline: MP-Net on the flow angle field, ImageNet appearance, a ConvGRU memory."""
