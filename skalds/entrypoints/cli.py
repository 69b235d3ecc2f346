"""The ``skalds`` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import skalds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skalds", description="Dispatch long-running tasks to worker nodes and keep control of them."
    )
    parser.add_argument("--version", action="version", version=f"skalds {skalds.__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0
