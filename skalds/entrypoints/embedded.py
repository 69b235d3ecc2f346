"""``skalds up``: the whole system in one process, so a new user sees tasks flow with one command.

The API and dashboard, dispatcher, monitor and alerts (controller mode DISPATCHER) and one node running the
example workers share one container — in memory by default, any port switched to a real backend by config
or option. The node lives inside the API's lifespan: on SIGTERM / SIGINT uvicorn stops accepting, the node
drains (or hands back) while the dispatcher and adapters are still up, then everything closes.
A few example tasks are created at start-up (``--no-examples`` leaves the system empty).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

from litestar import Litestar

from skalds.application.tasks import TaskDraft
from skalds.bootstrap import (
    Services,
    build_container,
    configure_logging,
    import_worker_class,
    tune_garbage_collector,
)
from skalds.config import ControllerMode, Settings, SettingsError, ShutdownPolicy, usable_cpus
from skalds.domain.errors import TaskAlreadyExistsError
from skalds.entrypoints.api.app import create_app
from skalds.entrypoints.controller import reach_backends
from skalds.entrypoints.node import EXIT_CONFIG, Skald
from skalds.entrypoints.serving import serve

log = logging.getLogger("skalds.up")
EXAMPLE_WORKERS = ("skalds.examples:CountdownWorker", "skalds.examples:StreamWorker")
EXAMPLE_TASKS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("example-countdown", "CountdownWorker", {"seconds": 120}),
    ("example-stream", "StreamWorker", {"rtspUrl": "rtsp://camera-1.local/stream", "fps": 2}),
)


def embedded_settings(settings: Settings, *, examples: bool = True) -> Settings:
    """Dispatcher mode; unless the settings say otherwise, a node id that says what it is, a node that
    hands its tasks back on Ctrl-C (draining would keep a demo waiting ``drain_timeout_ms`` for workers
    that never end; handed back, they run again at the next ``skalds up`` on a real repository), and, with
    the examples, a slot for each example task beside the CPU count, so they never keep a user's first
    task waiting."""
    controller = settings.controller.model_copy(update={"mode": ControllerMode.DISPATCHER})
    chosen = settings.node.model_fields_set
    node_changes: dict[str, Any] = {"id": settings.node.id or "embedded-node"}
    if "on_shutdown" not in chosen:
        node_changes["on_shutdown"] = ShutdownPolicy.HAND_BACK
    if "capacity" not in chosen and examples:
        node_changes["capacity"] = usable_cpus() + len(EXAMPLE_TASKS)
    node = settings.node.model_copy(update=node_changes)
    return settings.model_copy(update={"controller": controller, "node": node})


async def create_examples(services: Services, runnable: Collection[str]) -> None:
    """The example tasks the node can run, once: a restart on a real repository finds them there."""
    for task_id, class_name, attachments in EXAMPLE_TASKS:
        if class_name not in runnable:  # --worker replaced the example workers
            continue
        with contextlib.suppress(TaskAlreadyExistsError):
            await services.tasks.create(
                TaskDraft(class_name=class_name, id=task_id, source="example", attachments=attachments)
            )


def build_embedded_app(
    settings: Settings, *, worker_paths: Sequence[str] = EXAMPLE_WORKERS, examples: bool = True
) -> Litestar:
    skald = Skald(settings)
    runnable = []
    for path in worker_paths:
        worker_class = import_worker_class(path)
        skald.register_task_worker(worker_class)
        runnable.append(worker_class.__name__)

    @contextlib.asynccontextmanager
    async def node_and_examples(services: Services) -> AsyncIterator[None]:
        async with skald.running(services):
            if examples:
                await create_examples(services, runnable)
            yield

    return create_app(build_container(settings), embedded=node_and_examples)


def run_up(
    settings: Settings, *, worker_paths: Sequence[str] = EXAMPLE_WORKERS, examples: bool = True
) -> int:
    """The ``skalds up`` command."""
    configure_logging(settings, "skalds-up")
    tune_garbage_collector()
    settings = embedded_settings(settings, examples=examples)
    try:
        app = build_embedded_app(settings, worker_paths=worker_paths, examples=examples)
    except SettingsError as error:  # a --worker path that does not load: one line, not a traceback
        print(f"skalds up: {error}", file=sys.stderr)
        return EXIT_CONFIG
    unreachable = reach_backends(settings, "skalds up")
    if unreachable is not None:
        return unreachable
    controller = settings.controller
    url = f"http://{controller.host}:{controller.port}"
    log.info("skalds up: dashboard %s/dashboard, API %s/api, OpenAPI %s/schema", url, url, url)
    return serve(app, host=controller.host, port=controller.port)
