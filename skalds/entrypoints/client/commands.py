"""The argparse wiring of the client commands: ``skalds task create|list|show|cancel|pause|resume|retry|
update|watch``, ``skalds nodes`` and ``skalds alerts ...``, each with ``--api``, ``--api-key`` and ``--json``
(docs/cli.md)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from skalds.domain.task import TaskStatus
from skalds.entrypoints.client.alerts import add_alert_commands
from skalds.entrypoints.client.create_file import DEFAULT_BATCH_SIZE

CLIENT_COMMANDS = frozenset({"task", "nodes", "alerts"})
STEERING = {
    "cancel": "cancel the task (a running worker is asked to stop)",
    "pause": "pause a running task",
    "resume": "resume a paused task",
    "retry": "run a finished, failed or cancelled task again",
}
EXIT_CODES = """exit codes (docs/cli.md):
  0 done; watch: Finished     1 watch: Failed      2 watch: Cancelled, or a usage error
  3 not found (404)           4 refused (409)      5 invalid input (400, 413, 422)
  6 API key (401, 403)        7 backend down (503) 8 any other error answer
  69 the API cannot be reached                     130 interrupted (Ctrl-C)"""


def attachments_json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object such as '{{\"seconds\": 5}}', got {text!r}")
    return value


def key_value(text: str) -> tuple[str, Any]:
    """``key=value``; the value is read as JSON when it is JSON (``5``, ``true``, ``[1]``), else as text."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key.strip(), json.loads(raw)
    except ValueError:
        return key.strip(), raw


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of 1 or more, got {text!r}")
    return value


def task_status(text: str) -> str:
    for status in TaskStatus:
        if status.value.lower() == text.lower():
            return status.value
    valid = ", ".join(s.value for s in TaskStatus)
    raise argparse.ArgumentTypeError(f"must be one of {valid}; got {text!r}")


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--api",
        metavar="URL",
        help="the API's base URL (default: $SKALDS_API_URL, else http://127.0.0.1:8000)",
    )
    common.add_argument("--api-key", metavar="KEY", help="sent as X-API-Key (default: $SKALDS_API_KEY)")
    common.add_argument("--json", action="store_true", help="print the API's JSON instead of a table")
    return common


def _attachment_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--attachments", type=attachments_json, metavar="JSON", help="a JSON object")
    parser.add_argument(
        "--set",
        dest="set_values",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one attachment (repeatable; JSON values such as 5 or true are read as JSON)",
    )


def add_client_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``task`` and ``nodes`` to the ``skalds`` subparsers (``commands`` from ``add_subparsers``)."""
    common = _common()
    task = commands.add_parser(
        "task",
        help="create, list, steer and watch tasks on a running API",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = task.add_subparsers(dest="task_command", metavar="COMMAND", required=True)

    create = verbs.add_parser("create", parents=[common], help="create a task, or a file of tasks")
    what = create.add_mutually_exclusive_group(required=True)
    what.add_argument("--class", dest="class_name", metavar="NAME", help="worker class of the one task")
    what.add_argument(
        "--file",
        metavar="FILE",
        help="JSON Lines ('-' for stdin): one POST /api/tasks body per line, camelCase; sent in batches",
    )
    create.add_argument(
        "--batch-size",
        type=positive,
        metavar="N",
        help=f"with --file: tasks per request (default {DEFAULT_BATCH_SIZE}, the API's default limit)",
    )
    create.add_argument("--id", help="task id (default: generated)")
    create.add_argument("--name", help="a name for people")
    create.add_argument("--priority", type=int, help="higher runs first (default 0)")
    create.add_argument("--max-attempts", type=int, metavar="N", help="automatic retries stop after N")
    _attachment_options(create)

    listing = verbs.add_parser("list", parents=[common], help="list tasks, newest first")
    listing.add_argument("--status", type=task_status, help="Created, Assigning, Running, Paused, ...")
    listing.add_argument("--class", dest="class_name", metavar="NAME", help="only this worker class")
    listing.add_argument("--id", help="only ids containing this text")
    listing.add_argument("--executor", metavar="NODE", help="only tasks on this node")
    listing.add_argument("--page", type=int, default=1, help="default 1")
    listing.add_argument("--page-size", type=int, default=20, metavar="N", help="1-100 (default 20)")

    show = verbs.add_parser("show", parents=[common], help="one task in detail")
    show.add_argument("task_id", metavar="ID")
    for verb, text in STEERING.items():
        verbs.add_parser(verb, parents=[common], help=text).add_argument("task_id", metavar="ID")

    update = verbs.add_parser("update", parents=[common], help="new attachments (a running worker gets them)")
    update.add_argument("task_id", metavar="ID")
    _attachment_options(update)
    update.add_argument(
        "--expected-version",
        type=int,
        metavar="N",
        help="refuse (409) unless the task is at this version; with --set alone, the version read",
    )

    watch = verbs.add_parser(
        "watch",
        parents=[common],
        help="follow a task live; exit 0 Finished, 1 Failed, 2 Cancelled",
    )
    watch.add_argument("task_id", metavar="ID")
    logs = verbs.add_parser(
        "logs", parents=[common], help="a task's output; -f follows it until the task ends (exit as watch)"
    )
    logs.add_argument("task_id", metavar="ID")
    logs.add_argument("-f", "--follow", action="store_true", help="go on printing lines as they come")
    logs.add_argument("--attempt", type=int, metavar="N", help="which attempt (default: the current one)")
    logs.add_argument("--level", metavar="LEVEL", help="only this level and above: DEBUG, INFO, WARNING, ...")
    logs.add_argument(
        "-n", "--lines", type=positive, default=100, metavar="N", help="the last N lines first (default 100)"
    )
    for leaf in verbs.choices.values():
        leaf.epilog, leaf.formatter_class = EXIT_CODES, argparse.RawDescriptionHelpFormatter

    commands.add_parser(
        "nodes",
        parents=[common],
        help="the nodes (skalds), their health and tasks",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_alert_commands(commands, common, EXIT_CODES)
