"""An optional API key. With ``controller.api_key`` set, mutating requests need it in ``X-API-Key``; with
``controller.protect_reads`` too, reads need it as well (``?apiKey=`` works for EventSource, which cannot send
headers)."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

HEADER = "X-API-Key"
READS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PATHS = ("/schema", "/dashboard")  # pages and scripts hold no data; the data they fetch needs the key


async def api_key_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    state = connection.app.state
    expected = state.get("api_key")
    if not expected:
        return
    method = connection.scope.get("method", "GET")
    path = connection.url.path
    if method in READS and (not state.get("protect_reads") or path == "/" or path.startswith(OPEN_PATHS)):
        return
    given = connection.headers.get(HEADER) or (
        connection.query_params.get("apiKey") if method in READS else None
    )
    if not hmac.compare_digest((given or "").encode(), str(expected).encode()):
        raise NotAuthorizedException(f"this request needs the API key in the {HEADER} header")
