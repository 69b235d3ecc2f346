"""The Litestar application, built from a container: ``create_app(build_container(settings))``.

The lifespan starts the services once, stores them in ``app.state``, and owns the background loops the
controller mode asks for (upstream's modes: CONTROLLER = API only; MONITOR = + monitor, alerts, live
events; DISPATCHER = + dispatcher) in one task group. Handlers get ``services`` through Litestar's own
dependency injection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from functools import cached_property
from typing import Any

from litestar import Litestar, Router, get
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig

import skalds
from skalds.bootstrap import Container, Services, start, stop
from skalds.config import ControllerMode
from skalds.entrypoints.api.alerts import AlertController, SilenceController
from skalds.entrypoints.api.auth import api_key_guard
from skalds.entrypoints.api.bodies import BoundedRequest
from skalds.entrypoints.api.checkpoints import CheckpointController
from skalds.entrypoints.api.cross_site import allowed_hosts, cross_site_guard
from skalds.entrypoints.api.errors import EXCEPTION_HANDLERS
from skalds.entrypoints.api.event_feed import EventFeed
from skalds.entrypoints.api.events import EventController
from skalds.entrypoints.api.headers import security_headers
from skalds.entrypoints.api.history import DashboardHistoryController, TaskTimelineController
from skalds.entrypoints.api.injection import provide_services
from skalds.entrypoints.api.methods import AllowedMethods, answer_head, answer_options
from skalds.entrypoints.api.nodes import SkaldController
from skalds.entrypoints.api.prometheus import metrics
from skalds.entrypoints.api.system import SystemController
from skalds.entrypoints.api.task_logs import TaskLogController
from skalds.entrypoints.api.tasks import TaskController, create_tasks
from skalds.entrypoints.dashboard.routes import dashboard_router


class SkaldsApp(Litestar):
    """Litestar, answering HEAD and OPTIONS as HTTP means them (methods.py says what it does not)."""

    @cached_property
    def allowed_methods(self) -> AllowedMethods:
        return AllowedMethods(self.routes)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:  # the ASGI triple
        if scope["type"] == "http" and scope["method"] == "HEAD":
            await answer_head(super().__call__, scope, receive, send)
        elif scope["type"] == "http" and scope["method"] == "OPTIONS":
            await answer_options(super().__call__, scope, receive, send, self.allowed_methods)
        else:
            await super().__call__(scope, receive, send)


@get("/api", include_in_schema=False)
async def api_index() -> dict[str, Any]:
    return {
        "name": "Skalds API",
        "version": skalds.__version__,
        "endpoints": {
            "tasks": "/api/tasks",
            "taskLogs": "/api/tasks/{id}/logs",
            "skalds": "/api/skalds",
            "events": "/api/events",
            "system": "/api/system",
            "alerts": "/api/alerts",
            "silences": "/api/silences",
        },
    }


Embedded = Callable[[Services], contextlib.AbstractAsyncContextManager[None]]
"""Something that runs for the app's whole life on its services (``skalds up``'s node)."""


def create_app(container: Container, *, run_loops: bool = True, embedded: Embedded | None = None) -> Litestar:
    """``run_loops=False`` leaves the dispatcher, monitor and alert loops to the caller (tests drive them).
    ``embedded`` is entered once the loops run and left before they stop, so a node in the same process
    drains while the dispatcher, monitor and adapters are still there."""
    controller = container.settings().controller
    limits = container.settings().limits

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = await start(container)
        settings = services.settings
        api_key = settings.controller.api_key
        app.state.services = services
        app.state.api_key = api_key.get_secret_value() if api_key else None
        app.state.protect_reads = settings.controller.protect_reads
        feed = EventFeed()
        app.state.event_feed = feed
        loops = {
            "EventFeed": feed.run(services.subscriber),
            "Activity": services.activity.run(services.subscriber),
        }
        mode = settings.controller.mode
        period_s = settings.monitor.interval_ms / 1000
        if run_loops and mode in (ControllerMode.MONITOR, ControllerMode.DISPATCHER):
            loops["Monitor"] = services.monitor.run(interval_s=period_s)
            loops["Alerts"] = services.alerts.run(services.subscriber, interval_s=period_s)
            loops["Log keeper"] = services.log_keeper.run(services.log_shipper)
            loops["History keeper"] = services.history_keeper.run(
                services.subscriber, sample_every_s=settings.history.sample_every_ms / 1000
            )
        if run_loops and mode is ControllerMode.DISPATCHER:
            sweep_s = settings.dispatch.interval_ms / 1000
            loops["Dispatcher"] = services.dispatcher.run(services.subscriber, interval_s=sweep_s)
            loops["Upstream intake"] = services.upstream_intake.run(services.upstream_requests)
        tasks = {name: asyncio.create_task(loop, name=name) for name, loop in loops.items()}
        app.state.loops = tasks
        await asyncio.sleep(0)  # let the subscriptions open before the first request
        try:
            async with contextlib.AsyncExitStack() as lifetime:
                if embedded is not None:
                    await lifetime.enter_async_context(embedded(services))
                yield
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            await stop(container)

    return SkaldsApp(
        route_handlers=[
            metrics,
            api_index,
            TaskController,
            CheckpointController,
            TaskLogController,
            TaskTimelineController,
            DashboardHistoryController,
            Router("/", route_handlers=[create_tasks], request_max_body_size=limits.batch_body_bytes),
            SkaldController,
            SystemController,
            AlertController,
            SilenceController,
            EventController,
            dashboard_router(controller.dashboard_dir),
        ],
        dependencies={"services": Provide(provide_services, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        # Litestar copies the handler for every guard call (~7% of a small GET): no key, no guard.
        guards=[api_key_guard] if controller.api_key else [],
        cors_config=CORSConfig(allow_origins=controller.cors_origins) if controller.cors_origins else None,
        openapi_config=OpenAPIConfig(title="Skalds", version=skalds.__version__, path="/schema"),
        request_max_body_size=limits.body_bytes,
        request_class=BoundedRequest,
        after_request=security_headers,
        before_request=cross_site_guard(
            controller.cors_origins, allowed_hosts(controller.host, controller.allowed_hosts)
        ),
        debug=False,
        logging_config=None,  # the process configured logging from settings (adapters/logs.py); keep it
    )
