"""The ``skalds`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError as PydanticValidationError

import skalds
from skalds.config import (
    BackendSettings,
    ControllerMode,
    ControllerSettings,
    NodeSettings,
    Settings,
    SettingsError,
    load_settings,
)
from skalds.domain.nodes import NodeMode
from skalds.entrypoints.client.commands import CLIENT_COMMANDS, add_client_commands
from skalds.entrypoints.client.run import run_client
from skalds.entrypoints.controller import run_controller
from skalds.entrypoints.embedded import EXAMPLE_WORKERS, embedded_storage, run_up
from skalds.entrypoints.islands import island_refusal
from skalds.entrypoints.node import EXIT_CONFIG, run_node

BACKEND_OPTIONS = {port: sorted(b.value for b in ok) for port, ok in BackendSettings.ALLOWED.items()}
LOG_FORMATS = ("json", "text")


def _add_log_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        type=str.lower,
        help="log lines as JSON objects (for log collectors) or plain text (default: logging.json, text)",
    )


def _add_capacity(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--capacity",
        metavar="N|cpus|unlimited",
        help=f"tasks the node runs at once; 0 or 'unlimited' for no limit ({default})",
    )


def _with_node_options(settings: Settings, args: argparse.Namespace, **given: object) -> Settings:
    """``--capacity`` / ``--labels`` over ``node.*``, validated like the settings file."""
    for option in ("capacity", "labels"):
        if getattr(args, option, None) is not None:
            given[option] = getattr(args, option)
    overrides = {key: value for key, value in given.items() if value is not None and value != ""}
    if not overrides:
        return settings
    try:
        node = NodeSettings.model_validate({**settings.node.model_dump(exclude_unset=True), **overrides})
    except PydanticValidationError as error:
        raise SettingsError(
            [
                f"--{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
                for e in error.errors()
            ]
        ) from None
    return settings.model_copy(update={"node": node})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skalds", description="Dispatch long-running tasks to worker nodes and keep control of them."
    )
    parser.add_argument("--version", action="version", version=f"skalds {skalds.__version__}")
    commands = parser.add_subparsers(dest="command")
    up = commands.add_parser("up", help="all in one process: API, dashboard, dispatcher, monitor and a node")
    up.add_argument("--config", metavar="FILE", help="settings YAML; the environment overrides it")
    up.add_argument("--host", help="default: controller.host (127.0.0.1)")
    up.add_argument("--port", type=int, help="default: controller.port (8000)")
    up.add_argument(
        "--worker", action="append", default=[], metavar="MODULE:CLASS", help="instead of the example workers"
    )
    up.add_argument("--no-examples", action="store_true", help="do not create the example tasks")
    up.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the tasks are kept, in a SQLite file (default .skalds/)",
    )
    up.add_argument("--in-memory", action="store_true", help="keep tasks in memory only: gone when it exits")
    _add_dashboard_dir(up)
    _add_capacity(up, "default: node.capacity, the CPU count (plus the example tasks' two slots)")
    _add_log_format(up)
    for port, choices in BACKEND_OPTIONS.items():
        up.add_argument(
            f"--{port.replace('_', '-')}",
            choices=choices,
            type=str.lower,
            help=f"{port} backend (default: backends.{port}, memory)",
        )
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
    _add_capacity(node, "default: node.capacity, the CPU count")
    node.add_argument(
        "--labels",
        metavar="KEY=VALUE,...",
        help="labels tasks may require, e.g. zone=eu,gpu=yes (node.labels)",
    )
    _add_log_format(node)
    _add_standalone(node)
    controller = commands.add_parser("controller", help="run the API (+ monitor, + dispatcher by mode)")
    controller.add_argument(
        "--mode", choices=[m.value for m in ControllerMode], type=str.upper, help="default: controller.mode"
    )
    controller.add_argument("--config", metavar="FILE", help="settings YAML; the environment overrides it")
    controller.add_argument("--host", help="default: controller.host (127.0.0.1)")
    controller.add_argument("--port", type=int, help="default: controller.port (8000)")
    _add_dashboard_dir(controller)
    _add_log_format(controller)
    _add_standalone(controller)
    add_client_commands(commands)
    return parser


_OPTION_OF = {"dashboard_dir": "upstream-dashboard"}  # settings field -> the option that sets it


def _add_standalone(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--standalone",
        action="store_true",
        help="run with an in-memory event bus or live state, reaching no other process (islands.py)",
    )


def _refuse_island(settings: Settings, args: argparse.Namespace) -> bool:
    """True, after one line on stderr, when this node or controller would run alone unasked."""
    why = None if args.standalone else island_refusal(settings, args.command)
    if why is not None:
        print(f"skalds {args.command}: cannot start: {why}", file=sys.stderr)
    return why is not None


def _add_dashboard_dir(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--upstream-dashboard",
        metavar="DIR",
        dest="dashboard_dir",
        help="serve this dashboard bundle (upstream's prebuilt one) at /dashboard instead of ours "
        "(controller.dashboard_dir)",
    )


def _with_log_format(settings: Settings, args: argparse.Namespace) -> Settings:
    """``--log-format`` over ``logging.json`` (YAML or ``SKALDS_LOGGING__JSON``)."""
    chosen = getattr(args, "log_format", None)
    if chosen is None:
        return settings
    logging = settings.logging.model_copy(update={"json_format": chosen == "json"})
    return settings.model_copy(update={"logging": logging})


def _controller_settings(args: argparse.Namespace) -> Settings:
    settings = _with_log_format(load_settings(args.config), args)
    mode = getattr(args, "mode", None)  # ``up`` has none: it is always DISPATCHER
    given = {
        "mode": mode and ControllerMode(mode),
        "host": args.host,
        "port": args.port,
        "dashboard_dir": args.dashboard_dir,
    }
    overrides = {key: value for key, value in given.items() if value}
    if not overrides:
        return settings
    try:
        controller = ControllerSettings.model_validate(settings.controller.model_dump() | overrides)
    except PydanticValidationError as error:
        raise SettingsError(
            [
                f"--{_OPTION_OF.get(str(e['loc'][0]), e['loc'][0])}: {e['msg'].removeprefix('Value error, ')}"
                for e in error.errors()
            ]
        ) from None
    return settings.model_copy(update={"controller": controller})


def _up_settings(args: argparse.Namespace) -> Settings:
    settings = _with_node_options(_controller_settings(args), args)
    chosen = {port: getattr(args, port) for port in BACKEND_OPTIONS if getattr(args, port)}
    if chosen:  # only what was set counts as chosen (embedded_storage asks whether the repository was)
        backends = BackendSettings.model_validate(
            {**settings.backends.model_dump(exclude_unset=True), **chosen}
        )
        settings = settings.model_copy(update={"backends": backends})
    return embedded_storage(settings, data_dir=args.data_dir, in_memory=args.in_memory)


def _node_settings(args: argparse.Namespace) -> Settings:
    settings = _with_log_format(load_settings(args.config), args)
    return _with_node_options(settings, args, mode=args.mode, id=args.id, yaml_file=args.yaml)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in CLIENT_COMMANDS:
        return run_client(args)
    if args.command == "up":
        try:
            settings = _up_settings(args)
        except (SettingsError, PydanticValidationError) as error:
            print(f"skalds up: {error}", file=sys.stderr)
            return EXIT_CONFIG
        return run_up(settings, worker_paths=args.worker or EXAMPLE_WORKERS, examples=not args.no_examples)
    if args.command == "controller":
        try:
            settings = _controller_settings(args)
        except SettingsError as error:
            print(f"skalds controller: {error}", file=sys.stderr)
            return EXIT_CONFIG
        if _refuse_island(settings, args):
            return EXIT_CONFIG
        return run_controller(settings)
    if args.command == "node":
        try:
            settings = _node_settings(args)
        except SettingsError as error:
            print(f"skalds node: {error}", file=sys.stderr)
            return EXIT_CONFIG
        if _refuse_island(settings, args):
            return EXIT_CONFIG
        return run_node(settings, args.worker)
    parser.print_help()
    return 0
