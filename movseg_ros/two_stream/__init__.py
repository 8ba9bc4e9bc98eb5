"""Seed 000's two-stream Mask R-CNN: motion (flow) and appearance (RGB) streams, fused for the RPN and box
head, with an objectness branch for objects that stop moving."""
