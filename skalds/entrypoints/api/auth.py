"""An optional API key: when ``controller.api_key`` is set, mutating endpoints need it in ``X-API-Key``."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler

HEADER = "X-API-Key"


def requires_api_key(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    expected = connection.app.state.get("api_key")
    if not expected:
        return
    given = connection.headers.get(HEADER, "")
    if not hmac.compare_digest(given.encode(), str(expected).encode()):
        raise NotAuthorizedException(f"this action needs the API key in the {HEADER} header")
