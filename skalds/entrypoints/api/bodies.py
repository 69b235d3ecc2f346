"""Request bodies as the handlers get them: a JSON body nested deeper than the decoder can follow (a few
thousand ``[``) is a 400 that says so, never a RecursionError answered as a 500."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import ClientException


class BoundedRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            raise ClientException(detail="body: JSON nested too deeply to decode", status_code=400) from None
