"""Replay evaluation of recorded bags: in-process (deterministic) or through the live node."""
