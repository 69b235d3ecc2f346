"""``skalds task create --file tasks.jsonl``: one ``POST /api/tasks`` body per line, sent in batches.

Every line is parsed before anything is sent, so a bad line costs nothing; the API's refusal of a batch
names the item (``tasks[3].className``), which is mapped back to the line it came from. Progress goes to
stderr: one redrawn line on a terminal, a line per batch otherwise (a log).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from skalds.entrypoints.client.http import ApiClient, ApiError

DEFAULT_BATCH_SIZE = 1_000  # the API's default controller.max_batch_tasks
MAX_SHOWN_PROBLEMS = 20
_ITEM = re.compile(r"^tasks\[(\d+)\]\.?")
_JSON_TYPES = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


class FileError(Exception):
    """The file cannot be read, or lines in it are not create bodies; nothing was sent."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True, slots=True)
class Line:
    number: int
    body: dict[str, Any]


def read_lines(path: str) -> list[Line]:
    """The file's create bodies (blank lines skipped), or FileError naming every bad line by number."""
    name = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise FileError([f"cannot read {name}: {error}"]) from None
    lines, problems = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            body = json.loads(raw)
        except ValueError as error:
            problems.append(f"{name} line {number}: not valid JSON: {getattr(error, 'msg', error)}")
            continue
        if not isinstance(body, dict):
            kind = _JSON_TYPES.get(type(body), "a number")
            problems.append(f"{name} line {number}: must be a JSON object (a create body), got {kind}")
            continue
        lines.append(Line(number, body))
    if problems:
        more = len(problems) - MAX_SHOWN_PROBLEMS
        raise FileError(
            problems[:MAX_SHOWN_PROBLEMS] + ([f"... and {more} more bad lines"] if more > 0 else [])
        )
    if not lines:
        raise FileError([f"{name} has no tasks: expected one JSON object per line"])
    return lines


def create_from_file(client: ApiClient, path: str, batch_size: int, err: TextIO) -> list[str]:
    """Create the file's tasks in batches of ``batch_size``; returns their ids in line order. A refused
    batch raises ApiError naming the line, and what the batches before it created."""
    lines = read_lines(path)
    name = "stdin" if path == "-" else path
    ids: list[str] = []
    live = err.isatty()
    for start in range(0, len(lines), batch_size):
        batch = lines[start : start + batch_size]
        try:
            ids += client.create_many([line.body for line in batch])
        except ApiError as error:
            if live and ids:
                err.write("\n")
            done = f"{len(ids)} of {len(lines)} tasks created before it" if ids else "no task created"
            raise ApiError(error.status, f"{_located(error, batch, name)} ({done})", error.body) from None
        err.write(f"\rcreated {len(ids)}/{len(lines)}" if live else f"created {len(ids)}/{len(lines)}\n")
        err.flush()
    if live:
        err.write("\n")
    return ids


def _located(error: ApiError, batch: list[Line], name: str) -> str:
    """The API's message about an item of ``batch``, said about the line instead."""
    body = error.body if isinstance(error.body, dict) else {}
    field = str(body.get("field") or "")
    if (item := _ITEM.match(field)) and int(item.group(1)) < len(batch):
        line = batch[int(item.group(1))].number
        return f"{name} line {line}: {error.message.removeprefix(item.group(0)).lstrip(': ')}"
    if body.get("error") == "ALREADY_EXISTS":
        taken = [line.number for line in batch if f"task {line.body.get('id')!r} " in error.message]
        if taken:
            return (
                f"{name} line {taken[0]}: {error.message} (the lines before it in its batch may be created)"
            )
    if field == "tasks":
        return f"{error.message}: send fewer per request with --batch-size"
    return error.message
