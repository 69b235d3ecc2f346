"""Running the client commands: one API call (or a watch) each, output for people or ``--json``, and every
failure as one line on stderr with a documented exit code (docs/cli.md), never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from skalds.entrypoints.client.alerts import run_alerts
from skalds.entrypoints.client.commands import STEERING
from skalds.entrypoints.client.create_file import DEFAULT_BATCH_SIZE, FileError, create_from_file
from skalds.entrypoints.client.http import ApiClient, ApiError, ApiUnreachableError
from skalds.entrypoints.client.logs import show_logs
from skalds.entrypoints.client.render import nodes_table, task_details, tasks_table
from skalds.entrypoints.client.watch import JsonView, PeopleView, View, watch
from skalds.entrypoints.node import EXIT_UNAVAILABLE

DEFAULT_API = "http://127.0.0.1:8000"
EXIT_USAGE = 2  # as argparse
EXIT_NOT_FOUND = 3
EXIT_REFUSED = 4
EXIT_INVALID = 5
EXIT_UNAUTHORIZED = 6
EXIT_BACKEND_DOWN = 7
EXIT_API_ERROR = 8
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
EXIT_BY_HTTP_STATUS = {
    400: EXIT_INVALID,
    401: EXIT_UNAUTHORIZED,
    403: EXIT_UNAUTHORIZED,
    404: EXIT_NOT_FOUND,
    409: EXIT_REFUSED,
    413: EXIT_INVALID,
    422: EXIT_INVALID,
    503: EXIT_BACKEND_DOWN,
}


class UsageError(Exception):
    """A combination of options the parser cannot refuse by itself."""


def _print_json(out: TextIO, value: Any) -> None:
    out.write(json.dumps(value, indent=2) + "\n")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _attachments(args: argparse.Namespace, base: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """``--attachments`` (else ``base``) with every ``--set`` laid over it; None when neither was given."""
    if args.attachments is None and not args.set_values:
        return None
    merged = dict(args.attachments if args.attachments is not None else base or {})
    merged.update(dict(args.set_values))
    return merged


def _create(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    if args.file is not None:
        return _create_from_file(client, args, out)
    if args.batch_size is not None:
        raise UsageError("--batch-size goes with --file")
    given = {
        "className": args.class_name,
        "id": args.id,
        "name": args.name,
        "priority": args.priority,
        "maxAttempts": args.max_attempts,
        "attachments": _attachments(args),
    }
    task = client.create_task({key: value for key, value in given.items() if value is not None})
    if args.json:
        _print_json(out, task)
    else:
        out.write(f"created task {task['id']} ({task['className']}, {task['lifecycleStatus']})\n")
    return 0


def _create_from_file(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    single = {
        "--id": args.id,
        "--name": args.name,
        "--priority": args.priority,
        "--max-attempts": args.max_attempts,
        "--attachments": args.attachments,
        "--set": args.set_values or None,
    }
    if given := [option for option, value in single.items() if value is not None]:
        raise UsageError(f"{', '.join(given)}: with --file, each line gives its own fields")
    try:
        ids = create_from_file(client, args.file, args.batch_size or DEFAULT_BATCH_SIZE, sys.stderr)
    except FileError as error:
        for problem in error.problems:
            print(f"skalds task create: {problem}", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        _print_json(out, {"ids": ids})
    else:
        out.write(f"created {_count(len(ids), 'task')} from {'stdin' if args.file == '-' else args.file}\n")
    return 0


def _list(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    given = {
        "page": args.page,
        "pageSize": args.page_size,
        "lifecycleStatus": args.status,
        "className": args.class_name,
        "id": args.id,
        "executor": args.executor,
    }
    page = client.list_tasks({key: value for key, value in given.items() if value is not None})
    if args.json:
        _print_json(out, page)
        return 0
    items, total = page.get("items", []), page.get("total", 0)
    pages = max(1, -(-total // max(1, page.get("pageSize") or args.page_size)))
    if items:
        out.write(tasks_table(items) + "\n")
    shown = f"{len(items)} of {_count(total, 'task')}"
    out.write(f"{shown} (page {page.get('page', args.page)} of {pages})\n")
    return 0


def _show(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    task = client.get_task(args.task_id)
    out.write((json.dumps(task, indent=2) if args.json else task_details(task)) + "\n")
    return 0


def _steer(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    task = client.steer(args.task_id, args.task_command)
    if args.json:
        _print_json(out, task)
    else:
        status, desired = task["lifecycleStatus"], task["desiredState"]
        out.write(f"{args.task_command}: task {task['id']} is {status} (desired: {desired})\n")
    return 0


def _update(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    expected, base = args.expected_version, None
    if args.attachments is None and args.set_values:  # --set alone changes the current attachments
        current = client.get_task(args.task_id)
        base = current.get("attachments") or {}
        expected = expected if expected is not None else current.get("version")
    attachments = _attachments(args, base)
    if attachments is None:
        raise UsageError("give the new attachments: --attachments JSON and/or --set KEY=VALUE")
    answer = client.update_attachments(args.task_id, attachments, expected)
    if args.json:
        _print_json(out, answer)
    else:
        data = answer.get("data") or {}
        out.write(f"{answer.get('message')}: task {args.task_id}, attachments version ")
        out.write(f"{data.get('attachmentsVersion')}: {json.dumps(data.get('attachments'))}\n")
    return 0


def _watch(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    live = out.isatty()
    view: View = JsonView(out) if args.json else PeopleView(out, args.task_id, live=live)
    return watch(client, args.task_id, view)


def _nodes(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    answer = client.nodes()
    if args.json:
        _print_json(out, answer)
    else:
        items = answer.get("items") or []
        out.write((nodes_table(items) + "\n" if items else "") + f"{_count(len(items), 'node')}\n")
    return 0


Handler = Callable[[ApiClient, argparse.Namespace, TextIO], int]
HANDLERS: dict[str, Handler] = {
    "create": _create,
    "list": _list,
    "show": _show,
    "update": _update,
    "watch": _watch,
    "logs": show_logs,
    **dict.fromkeys(STEERING, _steer),
}


def _api_url(args: argparse.Namespace) -> str:
    url = str(args.api or os.environ.get("SKALDS_API_URL") or DEFAULT_API).strip()
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--api must be an http:// or https:// URL, got {url!r}")
    return url


def run_client(args: argparse.Namespace) -> int:
    """The ``task``, ``nodes`` and ``alerts`` commands; returns the exit code."""
    handler: Handler
    if args.command == "nodes":
        command, handler = "skalds nodes", _nodes
    elif args.command == "alerts":
        command, handler = f"skalds alerts {args.alerts_command}", run_alerts
    else:
        command, handler = f"skalds task {args.task_command}", HANDLERS[args.task_command]
    out = sys.stdout
    try:
        api_key = args.api_key or os.environ.get("SKALDS_API_KEY") or None
        with ApiClient(_api_url(args), api_key) as client:
            return handler(client, args, out)
    except UsageError as error:
        print(f"{command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ApiUnreachableError as error:
        print(f"{command}: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except ApiError as error:
        print(f"{command}: {error.message} (HTTP {error.status})", file=sys.stderr)
        return EXIT_BY_HTTP_STATUS.get(error.status, EXIT_API_ERROR)
    except KeyboardInterrupt:
        print(f"\n{command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `skalds task list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
