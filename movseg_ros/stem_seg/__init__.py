"""Seed 004 STEm-Seg: spatio-temporal embeddings clustered into instance tubes over video clips."""
