"""``skalds controller``: the HTTP API, plus the monitor and dispatcher as the mode says, under uvicorn.

Upstream's modes: CONTROLLER = API only; MONITOR = API + monitor + alerts + live events; DISPATCHER = all of
that plus the dispatcher. One uvicorn worker: the loops live in the app's lifespan. uvicorn handles SIGTERM
and SIGINT: it stops accepting, finishes requests, then the lifespan stops the loops and closes adapters.
"""

from __future__ import annotations

import logging

import uvicorn

from skalds.bootstrap import build_container
from skalds.config import Settings
from skalds.entrypoints.api.app import create_app

GRACEFUL_SHUTDOWN_S = 10
"""Live-event streams never end by themselves; after this long a stopping controller closes them."""


def run_controller(settings: Settings) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    controller = settings.controller
    app = create_app(build_container(settings))
    logging.getLogger("skalds.controller").info(
        "controller (%s) on http://%s:%d", controller.mode.value, controller.host, controller.port
    )
    uvicorn.run(
        app,
        host=controller.host,
        port=controller.port,
        log_level="warning",
        workers=1,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return 0
