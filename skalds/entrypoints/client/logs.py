"""``skalds task logs ID [-f]``: a task's output for people (one line per line, time, level, where from) or
as the API's JSON; ``-f`` follows it until the task ends, and exits as ``watch`` does."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from skalds.entrypoints.client.http import ApiClient, ApiUnreachableError

EXIT_BY_END = {"Finished": 0, "Failed": 1, "Cancelled": 2}
RECONNECT_S = 1.0


def log_line(line: dict[str, Any]) -> str:
    """``2026-12-07 17:13:24.123Z WARNING job: message``; stdout and stderr stand where a logger would."""
    at = datetime.fromtimestamp(int(line.get("at", 0)) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    where = line.get("logger") or line.get("stream") or ""
    return f"{at}Z {line.get('level', ''):<8} {where}: {line.get('message', '')}"


def show_logs(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    params: dict[str, str | int] = {"limit": args.lines}
    if args.attempt is not None:
        params["attempt"] = args.attempt
    if args.level:
        params["level"] = args.level
    page = client.task_logs(args.task_id, params)
    for line in page.get("lines", []):
        out.write((json.dumps(line) if args.json else log_line(line)) + "\n")
    out.flush()
    if not args.follow:
        return 0
    shown = page["attempt"] if page.get("lines") else None
    return _follow(client, args, out, {**params, "attempt": page["attempt"], "since": page["next"]}, shown)


def _follow(
    client: ApiClient, args: argparse.Namespace, out: TextIO, params: dict[str, str | int], shown: int | None
) -> int:
    """``shown``: the attempt whose lines were printed last; a later one's first line gets a heading."""
    params.pop("limit", None)
    told = False
    while True:
        try:
            for frame in client.task_log_stream(args.task_id, params):
                if frame.type == "task_log_end":
                    return EXIT_BY_END.get(str(frame.data.get("lifecycleStatus")), 0)
                if frame.type == "task_log":
                    attempt = int(frame.data["attempt"])
                    if shown is not None and attempt != shown and not args.json:
                        out.write(f"--- attempt {attempt} ---\n")
                    shown = attempt
                    params["attempt"], params["since"] = attempt, int(frame.data["seq"])
                    out.write((json.dumps(frame.data) if args.json else log_line(frame.data)) + "\n")
                    out.flush()
        except ApiUnreachableError as error:
            if not told:
                print(f"skalds task logs: {error}; reconnecting", file=sys.stderr)
                told = True
        time.sleep(RECONNECT_S)  # the stream ended without its end: the API restarted, or a proxy cut it
