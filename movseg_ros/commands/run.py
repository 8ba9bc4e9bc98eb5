"""movseg run (placeholder until implemented in this session)."""

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise SystemExit("movseg run: not implemented yet")
