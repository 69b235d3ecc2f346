"""Safe by default against other web pages: with no API key (``skalds up``'s default) any site the operator
visits could otherwise create, cancel and update tasks through the operator's browser.

- A state-changing request (POST, PUT, PATCH, DELETE) whose ``Origin`` is neither this server's own (the
  ``Host`` it was sent to) nor one of ``controller.cors_origins`` is a 403; so is one a browser marks
  ``Sec-Fetch-Site: cross-site`` without an Origin. Clients that are not browsers send neither header.
- A body must say ``Content-Type: application/json`` (415 otherwise): a page can send ``text/plain``
  across sites without asking first, and JSON only after a CORS preflight this server answers.
- ``Host`` must name this server (controller.allowed_hosts; by default the loopback names when bound to a
  loopback address), so a page on a DNS-rebound name cannot reach it, not even to read (400).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from litestar import Request, Response

from skalds.entrypoints.api.errors import error_answer

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def allowed_hosts(bound: str, configured: Sequence[str]) -> list[str]:
    """The Host names to accept: the configured ones; else, bound to loopback, the loopback names (and the
    bound address); else any (a server bound to every address has no one name to check against)."""
    if configured:
        return list(configured)
    try:
        loopback = ipaddress.ip_address(bound.strip("[]")).is_loopback
    except ValueError:
        loopback = bound == "localhost"
    return [*LOOPBACK_NAMES, bound.strip("[]")] if loopback else ["*"]


def host_name(host: str) -> str:
    """``Host`` without its port: ``[::1]:8000`` -> ``::1``, ``example.com:80`` -> ``example.com``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _has_body(request: Request[Any, Any, Any]) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "chunked" in request.headers.get("transfer-encoding", "").lower()


def cross_site_guard(cors_origins: Sequence[str], hosts: Sequence[str]) -> Any:
    """A ``before_request`` hook refusing foreign hosts, cross-site writes and non-JSON bodies."""
    trusted = frozenset(cors_origins)
    everyone = "*" in trusted
    names = None if "*" in hosts else frozenset(h.lower() for h in hosts)

    async def refuse_cross_site(request: Request[Any, Any, Any]) -> Response[dict[str, Any]] | None:
        if names is not None and host_name(request.headers.get("host", "")) not in names:
            shown = request.headers.get("host", "")
            return error_answer(
                400, "UNKNOWN_HOST", f"Host {shown!r} is not this server (controller.allowed_hosts)"
            )
        if request.method not in WRITES:
            return None
        origin = request.headers.get("origin")
        if origin is not None and not everyone and origin not in trusted:
            own = urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()
            if not own or origin == "null":
                return error_answer(
                    403, "CROSS_SITE", f"a request from Origin {origin!r} may not change anything"
                )
        elif origin is None and request.headers.get("sec-fetch-site") == "cross-site" and not everyone:
            return error_answer(403, "CROSS_SITE", "a cross-site request may not change anything")
        if _has_body(request) and not _json_type(request.headers.get("content-type", "")):
            return error_answer(
                415, "UNSUPPORTED_MEDIA_TYPE", "body: send it as Content-Type: application/json"
            )
        return None

    return refuse_cross_site
