"""One uvicorn worker serving a Skalds app; on shutdown it ends the live-event streams first.

uvicorn waits for every open response before it stops, and an SSE stream never ends by itself: with a
dashboard open, every stop of ``skalds controller`` or ``skalds up`` took the whole graceful-shutdown
timeout and then cut the streams mid-chunk. Ending them cleanly first lets browsers see the end of the
stream (and reconnect to the next process) and the process stop at once.
"""

from __future__ import annotations

import contextlib
import socket

import uvicorn
from litestar import Litestar

from skalds.entrypoints.api.event_feed import EventFeed

GRACEFUL_SHUTDOWN_S = 10
"""How long a stopping process waits for requests in flight (not streams: those are ended at once)."""
STARTUP_FAILURE = 3  # what uvicorn.run exits with when the server never started


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: Litestar) -> None:
        super().__init__(config)
        self._app = app

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        feed: EventFeed | None = self._app.state.get("event_feed")
        if feed is not None:
            feed.close()
        await super().shutdown(sockets)


def serve(app: Litestar, *, host: str, port: int) -> int:
    """Until SIGTERM / SIGINT, as ``uvicorn.run`` does: uvicorn re-raises SIGTERM afterwards so a supervisor
    sees why it ended, a Ctrl-C ends quietly, and a server that never started (port taken, a failing
    start-up) exits with uvicorn's code 3."""
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S
    )
    server = _Server(config, app)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else STARTUP_FAILURE
