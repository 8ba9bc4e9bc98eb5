"""Segmenters: one per pipeline, all behind the `Segmenter` interface."""
