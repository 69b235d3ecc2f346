"""``skalds controller``: the HTTP API, plus the monitor and dispatcher as the mode says, under uvicorn.

Upstream's modes: CONTROLLER = API only; MONITOR = API + monitor + alerts + live events; DISPATCHER = all of
that plus the dispatcher. One uvicorn worker: the loops live in the app's lifespan. uvicorn handles SIGTERM
and SIGINT: it stops accepting, finishes requests, then the lifespan stops the loops and closes adapters.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from skalds.bootstrap import build_container, configure_logging, start, stop, tune_garbage_collector
from skalds.config import Settings
from skalds.domain.errors import BackendUnavailableError
from skalds.entrypoints.api.app import create_app
from skalds.entrypoints.node import EXIT_UNAVAILABLE
from skalds.entrypoints.serving import serve


async def _reach_backends(settings: Settings) -> None:
    """Open and close every configured backend once, so one that is down is reported in one line before
    uvicorn starts (a failing lifespan prints the whole driver traceback instead)."""
    container = build_container(settings)
    await start(container)
    await stop(container)


def reach_backends(settings: Settings, command: str = "skalds controller") -> int | None:
    """None when every backend answers; else the exit code, after one line naming the one that did not."""
    try:
        asyncio.run(_reach_backends(settings))
    except BackendUnavailableError as error:
        print(f"{command}: cannot start: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return None


def run_controller(settings: Settings) -> int:
    configure_logging(settings, "controller")
    tune_garbage_collector()
    unreachable = reach_backends(settings)
    if unreachable is not None:
        return unreachable
    controller = settings.controller
    app = create_app(build_container(settings))
    logging.getLogger("skalds.controller").info(
        "controller (%s) on http://%s:%d", controller.mode.value, controller.host, controller.port
    )
    return serve(app, host=controller.host, port=controller.port)
