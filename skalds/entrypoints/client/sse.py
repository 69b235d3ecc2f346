"""Server-sent events as the API writes them (docs/api.md, "Live events"): ``id:`` and ``data:`` lines, a
blank line ending each frame, ``:`` comments for keep-alive. Only what the ``watch`` command needs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """One event: its ``id`` (None for the greeting) and its JSON ``data`` (``{"type", "taskId", ...}``)."""

    id: str | None
    data: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.data.get("type", ""))


def _decoded(lines: list[str]) -> dict[str, Any] | None:
    try:
        data = json.loads("\n".join(lines))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def read_frames(lines: Iterable[str]) -> Iterator[Frame]:
    """The frames in a stream of lines; data that is not a JSON object is skipped, as are comments."""
    event_id: str | None = None
    data: list[str] = []
    for line in lines:
        if not line:
            decoded = _decoded(data) if data else None
            if decoded is not None:
                yield Frame(id=event_id, data=decoded)
            event_id, data = None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "id":
            event_id = value
    # a frame cut off before its blank line is not dispatched (as in the EventSource specification)
