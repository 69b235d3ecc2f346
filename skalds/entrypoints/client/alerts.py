"""``skalds alerts list|ack|silence|silences|unsilence``: the alert lifecycle in a terminal (docs/alerts.md).

Who did it (``--by``) defaults to the login name, so an acknowledgement or a silence says whose it is.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
from collections.abc import Sequence
from typing import Any, TextIO

from skalds.entrypoints.client.http import ApiClient
from skalds.entrypoints.client.render import table, when

UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")


def duration_ms(text: str) -> int:
    """``90s``, ``30m``, ``2h``, ``1d``, ``1h30m``: milliseconds."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact or not parts:
        raise argparse.ArgumentTypeError(f"expected a duration such as 30m, 2h or 1d, got {text!r}")
    total = sum(int(n) * UNITS_MS[u] for n, u in parts)
    if total < 1:
        raise argparse.ArgumentTypeError(f"must be longer than 0, got {text!r}")
    return total


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without one)
        return "cli"


def add_alert_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    epilog: str,
) -> None:
    alerts = commands.add_parser(
        "alerts",
        help="list, acknowledge and silence alerts on a running API",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = alerts.add_subparsers(dest="alerts_command", metavar="COMMAND", required=True)
    listing = verbs.add_parser("list", parents=[common], help="the firing alerts (--all: with resolved ones)")
    listing.add_argument("--all", action="store_true", help="the history too, newest first")
    listing.add_argument("--limit", type=int, default=50, metavar="N", help="with --all (default 50)")
    ack = verbs.add_parser("ack", parents=[common], help="say you are on a firing alert")
    ack.add_argument("alert_id", metavar="ID")
    ack.add_argument("--by", default=None, help="who (default: your login name)")
    silence = verbs.add_parser("silence", parents=[common], help="mute a rule on a subject for a while")
    silence.add_argument("--rule", required=True, help="node_offline, task_failed, failure_rate, ... or '*'")
    silence.add_argument("--subject", default="*", help="a node id, task id, 'tasks', or '*' (default)")
    silence.add_argument("--for", dest="duration", type=duration_ms, required=True, metavar="DURATION",
                         help="30m, 2h, 1d, ...")  # fmt: skip
    silence.add_argument("--by", default=None, help="who (default: your login name)")
    silence.add_argument("--comment", default="", help="why, for whoever looks next")
    silences = verbs.add_parser("silences", parents=[common], help="the active silences (--all: ended too)")
    silences.add_argument("--all", action="store_true")
    unsilence = verbs.add_parser("unsilence", parents=[common], help="end a silence now")
    unsilence.add_argument("silence_id", metavar="ID")
    unsilence.add_argument("--by", default=None, help="who (default: your login name)")
    for leaf in verbs.choices.values():
        leaf.epilog, leaf.formatter_class = epilog, argparse.RawDescriptionHelpFormatter


def _state(alert: dict[str, Any]) -> str:
    return "silenced" if alert.get("silencedBy") and alert.get("active") else str(alert.get("status"))


def alerts_table(items: Sequence[dict[str, Any]], *, history: bool) -> str:
    """Firing ones: how often and who is on it; the history: when each started and ended. Severity is in
    ``--json``: with a full id, a table with every column would not fit in 100 columns."""
    if history:
        headers = ("ID", "STATUS", "RULE", "SUBJECT", "RAISED", "RESOLVED", "MESSAGE")
        rows = [
            (str(a.get("id")), _state(a), str(a.get("rule")), str(a.get("subject")),
             when(a.get("raisedAt"), short=True), when(a.get("resolvedAt"), short=True),
             str(a.get("message")))
            for a in items
        ]  # fmt: skip
        return table(headers, rows, shrinkable=(3, 6))
    firing = ("ID", "STATUS", "RULE", "SUBJECT", "N", "RAISED", "ACK", "MESSAGE")
    lines = [
        (str(a.get("id")), _state(a), str(a.get("rule")), str(a.get("subject")), str(a.get("count", 1)),
         when(a.get("raisedAt"), short=True), str(a.get("acknowledgedBy") or "-"), str(a.get("message")))
        for a in items
    ]  # fmt: skip
    return table(firing, lines, shrinkable=(3, 6, 7))


def silences_table(items: Sequence[dict[str, Any]]) -> str:
    headers = ("ID", "STATUS", "RULE", "SUBJECT", "UNTIL", "BY", "COMMENT")
    rows = [
        (str(s.get("id")), str(s.get("status")), str(s.get("rule")), str(s.get("subject")),
         when(s.get("endsAt"), short=True), str(s.get("createdBy")), str(s.get("comment") or "-"))
        for s in items
    ]  # fmt: skip
    return table(headers, rows, shrinkable=(3, 6))


def run_alerts(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    verb, by = args.alerts_command, getattr(args, "by", None) or _who()
    if verb == "list":
        answer = client.alerts(active=not args.all, limit=args.limit)
        shown = alerts_table(answer["items"], history=args.all) + "\n" if answer["items"] else ""
        text = shown + f"{answer['total']} {'alerts' if args.all else 'firing'}\n"
    elif verb == "ack":
        answer = client.acknowledge(args.alert_id, by)
        text = f"alert {answer['id']} ({answer['rule']} on {answer['subject']}) acknowledged by "
        text += f"{answer['acknowledgedBy']}\n"
    elif verb == "silence":
        body = {"rule": args.rule, "subject": args.subject, "durationMs": args.duration, "createdBy": by,
                "comment": args.comment}  # fmt: skip
        answer = client.silence(body)
        what = f"{answer['rule']} on {answer['subject']}"
        text = f"silence {answer['id']}: {what} until {when(answer['endsAt'])}\n"
    elif verb == "silences":
        answer = client.silences(active=not args.all)
        shown = silences_table(answer["items"]) + "\n" if answer["items"] else ""
        text = shown + f"{answer['total']} {'silences' if args.all else 'active'}\n"
    else:
        answer = client.expire_silence(args.silence_id, by)
        text = f"silence {answer['id']} ended by {answer['expiredBy']}\n"
    out.write(json.dumps(answer, indent=2) + "\n" if args.json else text)
    return 0
