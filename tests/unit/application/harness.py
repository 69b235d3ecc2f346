"""A whole Skalds in one process on the in-memory adapters, with a fake clock and workers the test steers.

Built through the composition root, as production builds it. Background loops are not started; the test
drives time and cycles explicitly, so every run is reproducible.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

from dependency_injector import providers

from skalds.adapters.memory.supervisor import InProcessWorkerContext
from skalds.adapters.process.supervisor import ProcessWorkerSupervisor
from skalds.application.node_runtime import NodeIdentity, NodeRuntime
from skalds.bootstrap import Container, Services, build_container, build_node, build_process_node, start
from skalds.config import Settings
from skalds.domain.ports import ResourceMeter
from tests.fakes import FakeClock

CLASS = "Steerable"


@dataclass
class WorkerControl:
    """What the test tells one running worker to do next."""

    progress: float = 0.0
    finish: bool = False
    fail: str | None = None
    ignore_cancel: bool = False
    updates: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    reject_updates: bool = False


class SteerableWorkers:
    """A worker function whose behaviour each test sets per task id."""

    def __init__(self) -> None:
        self.controls: dict[str, WorkerControl] = {}
        self.started: list[str] = []

    def control(self, task_id: str) -> WorkerControl:
        return self.controls.setdefault(task_id, WorkerControl())

    async def __call__(self, ctx: InProcessWorkerContext) -> None:
        control = self.control(ctx.task_id)
        self.started.append(ctx.task_id)

        def on_update(attachments: Any, version: int) -> None:
            if control.reject_updates:
                raise ValueError("this worker rejects updates")
            control.updates.append((dict(attachments), version))

        ctx.on_update = on_update
        while True:
            if not control.ignore_cancel:
                await ctx.checkpoint()
            if control.fail:
                raise RuntimeError(control.fail)
            if control.finish:
                return
            ctx.report_progress(control.progress)
            await asyncio.sleep(0.001)


@dataclass
class System:
    services: Services
    clock: FakeClock
    workers: SteerableWorkers
    nodes: dict[str, NodeRuntime] = field(default_factory=dict)
    listeners: list[asyncio.Task[None]] = field(default_factory=list)
    container: Container | None = None  # what build_system started, for stop() (a file to close)

    async def add_node(
        self,
        node_id: str,
        *,
        classes: frozenset[str] = frozenset({CLASS}),
        capacity: int | None = None,
        listening: bool = True,
        meter: ResourceMeter | None = None,
    ) -> NodeRuntime:
        """A node on this system; one not ``listening`` registers and beats but never gets commands."""
        identity = NodeIdentity(id=node_id, supported_classes=classes, capacity=capacity)
        node = build_node(self.services, identity, {CLASS: self.workers}, cancel_grace_s=0.05, meter=meter)
        await node.register()
        self.nodes[node_id] = node
        if not listening:
            return node
        subscription = self.services.subscriber.commands(node_id)

        async def obey() -> None:
            async for command in subscription:
                await node.handle(command)

        self.listeners.append(asyncio.create_task(obey()))
        return node

    async def add_process_node(
        self,
        node_id: str,
        worker_paths: dict[str, str],
        *,
        cancel_grace_s: float = 0.3,
        kill_grace_s: float = 0.3,
        meter: ResourceMeter | None = None,
    ) -> ProcessWorkerSupervisor:
        """A node whose workers are real OS processes."""
        identity = NodeIdentity(id=node_id, supported_classes=frozenset(worker_paths))
        node, supervisor = build_process_node(
            self.services,
            identity,
            worker_paths,
            heartbeat_period_s=0.05,
            cancel_grace_s=cancel_grace_s,
            kill_grace_s=kill_grace_s,
            meter=meter,
        )
        await node.register()
        self.nodes[node_id] = node
        self.listeners.append(asyncio.create_task(node.ship_output()))
        subscription = self.services.subscriber.commands(node_id)

        async def obey() -> None:
            async for command in subscription:
                await node.handle(command)

        self.listeners.append(asyncio.create_task(obey()))
        return supervisor

    async def settle(self, seconds: float = 0.01) -> None:
        """Let commands reach nodes and workers react (real time: workers are asyncio tasks)."""
        await asyncio.sleep(seconds)

    async def beat(self, *node_ids: str) -> None:
        """Each node renews (heartbeats) and checks what it owns, as its loops do once a period."""
        for node_id in node_ids or tuple(self.nodes):
            await self.nodes[node_id].beat()
            await self.nodes[node_id].reconcile_ownership()

    async def cycle(self, advance_ms: int = 1_000, *, beating: tuple[str, ...] | None = None) -> None:
        """One turn of the whole system: time passes, dispatch, commands land, nodes beat, monitor judges."""
        self.clock.advance(advance_ms)
        await self.services.dispatcher.retry_due()
        await self.services.dispatcher.dispatch_once()
        await self.settle()
        await self.beat(*(beating if beating is not None else tuple(self.nodes)))
        await self.services.monitor.run_cycle()
        await self.settle()

    async def close(self) -> None:
        for listener in self.listeners:
            listener.cancel()
        for node in self.nodes.values():
            await node._supervisor.shutdown()


def settings_for_tests(**sections: Any) -> Settings:
    base: dict[str, Any] = {
        "heartbeat": {
            "suspect_after_ms": 5_000,
            "dead_after_ms": 15_000,
            "stall_after_ms": 60_000,
            "first_heartbeat_grace_ms": 10_000,
        },
        "retry": {"base_delay_ms": 1_000, "factor": 2, "max_delay_ms": 10_000},
        "monitor": {"cancel_grace_ms": 5_000, "pause_grace_ms": 5_000},
        "dispatch": {"assign_timeout_ms": 10_000},
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return Settings.model_validate(base)


async def build_system(settings: Settings | None = None, *, seed: int = 1) -> System:
    clock = FakeClock(1_700_000_000_000)
    container = build_container(settings or settings_for_tests())
    container.clock.override(providers.Object(clock))
    container.rng.override(providers.Object(random.Random(seed)))
    services = await start(container)
    workers = SteerableWorkers()
    system = System(services=services, clock=clock, workers=workers, container=container)
    return system
