"""A skald node process: upstream's ``Skald`` API (``register_task_worker``, ``run``) and its three modes.

- ``node``: takes assignments for its own id from the event bus and runs each task in its own process.
- ``edge``: runs the tasks of a YAML file (stored as Active tasks it owns; cancellable), and obeys commands.
- ``single_process``: runs the first YAML task in the foreground and exits 0 for Finished, 1 for Failed and
  2 for Cancelled (one pod per task); SIGTERM cancels the task gracefully.

On SIGTERM / SIGINT a node drains (no new work, running tasks may finish within the drain timeout, the rest
are cancelled) or hands its tasks back at once, as ``node.on_shutdown`` says; no worker process outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

from skalds.application.node_runtime import NodeIdentity
from skalds.bootstrap import (
    Services,
    build_container,
    build_process_node,
    configure_logging,
    edge_tasks,
    import_worker_class,
    resource_meter,
    start,
    stop,
    tune_garbage_collector,
    worker_path,
)
from skalds.config import Settings, SettingsError, ShutdownPolicy, load_settings
from skalds.domain import lifecycle
from skalds.domain.errors import BackendUnavailableError
from skalds.domain.heartbeat import Outcome
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.nodes import NodeMode
from skalds.domain.task import TaskMode, new_task
from skalds.worker.base import BaseTaskWorker

log = logging.getLogger("skalds.node")
EXIT_CODES = {Outcome.FINISHED: 0, Outcome.FAILED: 1, Outcome.CANCELLED: 2}
EXIT_CONFIG = 78  # sysexits EX_CONFIG: the node could not start because of its settings
EXIT_UNAVAILABLE = 69  # sysexits EX_UNAVAILABLE: a backend (Kafka, Redis, MongoDB) did not answer at start-up


class Skald:
    """One node. ``Skald(settings).register_task_worker(MyWorker)``, then ``run()``; returns an exit code."""

    def __init__(self, settings: Settings | None = None, *, config_file: str | None = None) -> None:
        self.settings = settings or load_settings(config_file)
        self.node_id = self.settings.node.id or f"skald-{uuid.uuid4().hex[:8]}"
        self._workers: dict[str, type[BaseTaskWorker[Any]]] = {}
        for path in self.settings.node.worker_classes:
            self.register_task_worker(import_worker_class(path))

    def register_task_worker(self, worker_class: type[BaseTaskWorker[Any]]) -> None:
        if not (isinstance(worker_class, type) and issubclass(worker_class, BaseTaskWorker)):
            raise TypeError(f"{worker_class!r} is not a BaseTaskWorker subclass")
        worker_class.get_data_model()  # fail now, not when a task arrives
        self._workers[worker_class.__name__] = worker_class

    def run(self) -> int:
        """Run until SIGTERM / SIGINT (or, in single_process mode, until the task ends)."""
        return asyncio.run(self.serve())

    async def serve(self, stop_event: asyncio.Event | None = None) -> int:
        stopping = stop_event or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stopping.set)
        container = build_container(self.settings)
        services = await start(container)
        for name, worker_class in self._workers.items():
            services.catalog.register(name, worker_class.get_data_model())  # single_process needs them too
        try:
            if self.settings.node.mode is NodeMode.SINGLE_PROCESS:
                return await self._single_process(services, stopping)
            return await self._serve_node(services, stopping)
        finally:
            await stop(container)

    async def _serve_node(self, services: Services, stopping: asyncio.Event) -> int:
        async with self.running(services):
            await stopping.wait()
        return 0

    @contextlib.asynccontextmanager
    async def running(self, services: Services) -> AsyncIterator[None]:
        """The node registered, beating and obeying commands while the block runs; leaving it drains or
        hands back as ``node.on_shutdown`` says. ``skalds up`` runs one inside the API's lifespan."""
        node_settings = self.settings.node
        node, _ = build_process_node(
            services,
            NodeIdentity(
                id=self.node_id,
                mode=node_settings.mode,
                supported_classes=frozenset(self._workers),
                capacity=node_settings.slots(),
                labels=node_settings.labels,
            ),
            {name: worker_path(cls) for name, cls in self._workers.items()},
            heartbeat_period_s=self.settings.monitor.heartbeat_period_ms / 1000,
            cancel_grace_s=node_settings.cancel_grace_ms / 1000,
            kill_grace_s=node_settings.kill_grace_ms / 1000,
            start_method=node_settings.start_method,
            meter=resource_meter(),
        )
        for name, worker_class in self._workers.items():
            services.catalog.register(name, worker_class.get_data_model())
        await node.register()
        if node_settings.mode is NodeMode.EDGE and node_settings.yaml_file:
            for problem in await node.adopt_edge_tasks(edge_tasks(node_settings.yaml_file, services.catalog)):
                log.error("edge task %s", problem)
        log.info("skald %s (%s) running %s", self.node_id, node_settings.mode.value, sorted(self._workers))
        beating = asyncio.create_task(
            node.run(
                services.subscriber, heartbeat_interval_s=self.settings.monitor.heartbeat_period_ms / 1000
            )
        )
        try:
            yield
        finally:
            log.info("skald %s stopping (%s)", self.node_id, node_settings.on_shutdown.value)
            beating.cancel()
            await asyncio.gather(beating, return_exceptions=True)
            await node.stop(
                drain=node_settings.on_shutdown is ShutdownPolicy.DRAIN,
                drain_timeout_s=node_settings.drain_timeout_ms / 1000,
            )

    async def _single_process(self, services: Services, stopping: asyncio.Event) -> int:
        node_settings = self.settings.node
        if not node_settings.yaml_file:
            raise SettingsError("node.yaml_file: single_process mode needs a YAML file with one task")
        edges = edge_tasks(node_settings.yaml_file, services.catalog)
        if not edges:
            raise SettingsError(f"node.yaml_file: {node_settings.yaml_file} has no task under TaskWorkers")
        edge = edges[0]
        task = new_task(
            task_id=edge.id,
            class_name=edge.class_name,
            now=services.clock.now_ms(),
            source="YAML",
            mode=TaskMode.PASSIVE_PROCESS,
            attachments=edge.attachments,
            is_persistent=edge.is_persistent,
        )
        task, _ = lifecycle.apply(task, TaskCommand.ASSIGN, at=services.clock.now_ms(), executor=self.node_id)
        _, supervisor = build_process_node(
            services,
            NodeIdentity(
                id=self.node_id, mode=NodeMode.SINGLE_PROCESS, supported_classes=frozenset(self._workers)
            ),
            {name: worker_path(cls) for name, cls in self._workers.items()},
            cancel_grace_s=node_settings.cancel_grace_ms / 1000,
            kill_grace_s=node_settings.kill_grace_ms / 1000,
            start_method="spawn",  # one task: a forkserver would only add a process
        )
        await supervisor.start(task)
        while (state := supervisor.states()[task.id]).outcome is None:
            if stopping.is_set():
                await supervisor.cancel(task.id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 0.05)
        await supervisor.shutdown()
        log.info("task %s %s%s", task.id, state.outcome.value, f": {state.error}" if state.error else "")
        return EXIT_CODES[state.outcome]


def run_node(settings: Settings, worker_paths: list[str]) -> int:
    """The ``skalds node`` command."""
    try:
        skald = Skald(settings)
        configure_logging(settings, skald.node_id)  # upstream named the node's log file by its id
        tune_garbage_collector()
        for path in worker_paths:
            skald.register_task_worker(import_worker_class(path))
        return skald.run()
    except SettingsError as error:
        print(f"skalds node: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except BackendUnavailableError as error:  # one line for the operator, not a driver traceback
        print(f"skalds node: cannot start: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE


Skalds = Skald  # upstream's docs say ``from skalds import Skalds``; the package exported ``Skald``
