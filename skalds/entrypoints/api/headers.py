"""Headers every answer carries, so a browser treats the API and the dashboard as what they are: content
types are not sniffed, no page of ours may be framed by another site (clickjacking), referrers stay home,
and the dashboard page may load only what this server serves (plus inline styles, which both dashboards
set on elements)."""

from __future__ import annotations

from typing import Any

from litestar import Response

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
)
ALWAYS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


async def security_headers(response: Any) -> Any:
    """An ``after_request`` hook; a live stream (a bare ASGI app, events.py) is left as it is."""
    if not isinstance(response, Response):
        return response
    for name, value in ALWAYS.items():
        response.headers.setdefault(name, value)
    media = getattr(response.media_type, "value", response.media_type)  # MediaType or a plain string
    if str(media).startswith("text/html"):
        response.headers.setdefault("content-security-policy", CONTENT_SECURITY_POLICY)
    return response
