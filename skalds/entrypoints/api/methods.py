"""HEAD and OPTIONS as HTTP means them, which Litestar does not do on its own.

- ``HEAD`` on any path that takes ``GET`` answers what ``GET`` would, without the body (RFC 9110 §9.3.2);
  Litestar answers 405. The GET runs in full (its body is dropped), and the app is told the client left
  once the headers are out, so a live stream (``/api/events/...``) ends there.
- ``OPTIONS`` lists in ``Allow`` every method of the path. Litestar builds a path's OPTIONS answer when it
  first sees the path and keeps that list when later handlers join it (``/api/tasks/{id}`` said
  ``DELETE, OPTIONS``, though it also takes ``GET``); ``Allow`` is written here from the final routes, and
  a 405's by errors.py from the same table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from litestar.routes import HTTPRoute

ASGI = Any
"""An ASGI app, scope, receive or send; Litestar's own types do not let a scope be rewritten."""


class AllowedMethods:
    """Each HTTP path template -> its ``Allow`` value (HEAD included wherever GET is), by template for
    OPTIONS (Litestar put it in the scope) and by path for a 405 (refused before the scope had one)."""

    def __init__(self, routes: Iterable[Any]) -> None:
        self.by_template: dict[str, str] = {}
        for route in routes:
            if isinstance(route, HTTPRoute):
                methods = set(route.methods) | {"OPTIONS"}
                if "GET" in methods:
                    methods.add("HEAD")
                self.by_template[route.path_format] = ", ".join(sorted(methods))
        # static paths first, as Litestar's router prefers them (/api/tasks/batch over /api/tasks/{id})
        ordered = sorted(self.by_template, key=lambda template: "{" in template)
        self._patterns = [(re.compile(_pattern(t)), self.by_template[t]) for t in ordered]

    def for_path(self, path: str) -> str | None:
        return next((allow for pattern, allow in self._patterns if pattern.fullmatch(path)), None)


def _pattern(template: str) -> str:
    """``/api/tasks/{task_id}`` -> a regular expression matching its paths (a parameter is one segment)."""
    return "".join(
        "[^/]+" if part.startswith("{") else re.escape(part) for part in re.split(r"(\{[^}]+\})", template)
    )


async def answer_head(app: ASGI, scope: ASGI, receive: ASGI, send: ASGI) -> None:
    """Run the request as a GET; send its start and an empty end, and tell the app the client left."""
    finished = False

    async def headers_only(message: ASGI) -> None:
        nonlocal finished
        if finished:
            return
        if message["type"] == "http.response.start":
            await send(message)
            return
        finished = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def until_finished() -> ASGI:
        if finished:
            return {"type": "http.disconnect"}
        return await receive()

    await app({**scope, "method": "GET"}, until_finished, headers_only)


async def answer_options(app: ASGI, scope: ASGI, receive: ASGI, send: ASGI, allowed: AllowedMethods) -> None:
    """Let the app answer (CORS preflights stay its own); put the path's whole list in ``Allow``."""

    async def with_allow(message: ASGI) -> None:
        if message["type"] == "http.response.start":
            value = allowed.by_template.get(scope.get("path_template", ""))
            headers = list(message.get("headers", []))
            if value is not None and any(name.lower() == b"allow" for name, _ in headers):
                headers = [(n, v) for n, v in headers if n.lower() != b"allow"]
                headers.append((b"allow", value.encode()))
                message = {**message, "headers": headers}
        await send(message)

    await app(scope, receive, with_allow)
