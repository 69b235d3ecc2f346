"""The ``skalds`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import skalds
from skalds.config import ControllerMode, Settings, SettingsError, load_settings
from skalds.domain.nodes import NodeMode
from skalds.entrypoints.controller import run_controller
from skalds.entrypoints.node import EXIT_CONFIG, run_node


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skalds", description="Dispatch long-running tasks to worker nodes and keep control of them."
    )
    parser.add_argument("--version", action="version", version=f"skalds {skalds.__version__}")
    commands = parser.add_subparsers(dest="command")
    node = commands.add_parser("node", help="run a skald node (modes: node, edge, single_process)")
    node.add_argument(
        "--mode", choices=[m.value for m in NodeMode], type=str.lower, help="default: node.mode"
    )
    node.add_argument("--config", metavar="FILE", help="settings YAML; the environment overrides it")
    node.add_argument("--id", help="node id (default: node.id, else generated)")
    node.add_argument("--yaml", metavar="FILE", help="edge / single_process task file (TaskWorkers: ...)")
    node.add_argument(
        "--worker", action="append", default=[], metavar="MODULE:CLASS", help="a worker class (repeatable)"
    )
    controller = commands.add_parser("controller", help="run the API (+ monitor, + dispatcher by mode)")
    controller.add_argument(
        "--mode", choices=[m.value for m in ControllerMode], type=str.upper, help="default: controller.mode"
    )
    controller.add_argument("--config", metavar="FILE", help="settings YAML; the environment overrides it")
    controller.add_argument("--host", help="default: controller.host (127.0.0.1)")
    controller.add_argument("--port", type=int, help="default: controller.port (8000)")
    return parser


def _controller_settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    given = {"mode": args.mode and ControllerMode(args.mode), "host": args.host, "port": args.port}
    overrides = {key: value for key, value in given.items() if value}
    return settings.model_copy(update={"controller": settings.controller.model_copy(update=overrides)})


def _node_settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    overrides = {
        key: value
        for key, value in (
            ("mode", args.mode and NodeMode(args.mode)),
            ("id", args.id),
            ("yaml_file", args.yaml),
        )
        if value
    }
    return settings.model_copy(update={"node": settings.node.model_copy(update=overrides)})


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "controller":
        try:
            settings = _controller_settings(args)
        except SettingsError as error:
            print(f"skalds controller: {error}", file=sys.stderr)
            return EXIT_CONFIG
        return run_controller(settings)
    if args.command == "node":
        try:
            settings = _node_settings(args)
        except SettingsError as error:
            print(f"skalds node: {error}", file=sys.stderr)
            return EXIT_CONFIG
        return run_node(settings, args.worker)
    parser.print_help()
    return 0
