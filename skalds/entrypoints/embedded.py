"""``skalds up``: the whole system in one process, so a new user sees tasks flow with one command.

The API and dashboard, dispatcher, monitor and alerts (controller mode DISPATCHER) and one node running the
example workers share one container: the tasks in a SQLite file (``.skalds/tasks.sqlite3``, or
``--data-dir``), so a restart finds them; live state and events in memory; any port switched to a real
backend by config or option, ``--in-memory`` for tasks that go with the process. The node lives inside the
API's lifespan: on SIGTERM / SIGINT uvicorn stops accepting, the node drains (or hands back) while the
dispatcher and adapters are still up, then everything closes. A few example tasks are created at start-up
(``--no-examples`` leaves the system empty).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path
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
from skalds.config import Backend, ControllerMode, Settings, SettingsError, ShutdownPolicy, usable_cpus
from skalds.domain.errors import TaskAlreadyExistsError
from skalds.entrypoints.api.app import create_app
from skalds.entrypoints.controller import reach_backends
from skalds.entrypoints.data_dir import DataDirError, claim
from skalds.entrypoints.node import EXIT_CONFIG, Skald
from skalds.entrypoints.serving import serve

log = logging.getLogger("skalds.up")
EXAMPLE_WORKERS = ("skalds.examples:CountdownWorker", "skalds.examples:StreamWorker")
EXAMPLE_TASKS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("example-countdown", "CountdownWorker", {"seconds": 120}),
    ("example-stream", "StreamWorker", {"rtspUrl": "rtsp://camera-1.local/stream", "fps": 2}),
)


DEFAULT_DATA_DIR = Path(".skalds")
TASK_FILE = "tasks.sqlite3"


def embedded_storage(
    settings: Settings, *, data_dir: Path | None = None, in_memory: bool = False
) -> Settings:
    """Where ``skalds up`` keeps its tasks: a SQLite file in ``data_dir`` (default ``.skalds/``), unless
    the settings chose a repository or ``in_memory`` asks for today's memory-only behaviour."""
    backends = settings.backends
    chosen = backends.repository if "repository" in backends.model_fields_set else None
    if in_memory and data_dir is not None:
        raise SettingsError("--in-memory and --data-dir: choose one")
    if in_memory:
        if chosen not in (None, Backend.MEMORY):
            raise SettingsError(f"--in-memory: backends.repository is set to {chosen}; choose one")
        repository = Backend.MEMORY
    elif chosen is None or chosen is Backend.SQLITE:
        repository = Backend.SQLITE
    elif data_dir is not None:
        raise SettingsError(f"--data-dir: backends.repository is set to {chosen}, which keeps no file")
    else:
        return settings
    update: dict[str, Any] = {"backends": backends.model_copy(update={"repository": repository})}
    if repository is Backend.SQLITE and (
        data_dir is not None or "path" not in settings.sqlite.model_fields_set
    ):
        path = (data_dir or DEFAULT_DATA_DIR) / TASK_FILE
        update["sqlite"] = settings.sqlite.model_copy(update={"path": path})
    return settings.model_copy(update=update)


def storage_line(settings: Settings) -> str:
    """What ``skalds up`` says at start: where its tasks live and what survives a restart."""
    backends = settings.backends
    if backends.repository is Backend.SQLITE:
        where = f"tasks in {settings.sqlite.path.resolve()} (kept across restarts)"
    elif backends.repository is Backend.MEMORY:
        where = "tasks in memory (gone when this process ends; drop --in-memory to keep them)"
    else:
        where = f"tasks in {backends.repository}"
    return (
        f"{where}; backends: repository={backends.repository}, live_state={backends.live_state}, "
        f"event_bus={backends.event_bus}"
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
    try:  # held until this function returns, i.e. for the whole run
        lock = claim(settings.sqlite.path.parent) if settings.backends.repository is Backend.SQLITE else None
    except DataDirError as error:
        print(f"skalds up: {error}", file=sys.stderr)
        return EXIT_CONFIG
    with lock or contextlib.nullcontext():
        return _serve_up(settings, app)


def _serve_up(settings: Settings, app: Litestar) -> int:
    unreachable = reach_backends(settings, "skalds up")
    if unreachable is not None:
        return unreachable
    controller = settings.controller
    url = f"http://{controller.host}:{controller.port}"
    log.info("skalds up: %s", storage_line(settings))
    log.info("skalds up: dashboard %s/dashboard, API %s/api, OpenAPI %s/schema", url, url, url)
    return serve(app, host=controller.host, port=controller.port)
