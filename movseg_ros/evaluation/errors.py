"""The error every metric raises on bad input (mismatched sizes, wrong types, bad parameters)."""

from __future__ import annotations


class MetricInputError(ValueError):
    """Input a metric cannot score; the message names the thing (sequence, frame, argument) and the problem."""
