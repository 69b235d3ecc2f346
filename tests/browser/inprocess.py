"""A Skalds in this process on a real uvicorn server, with tasks and nodes written through its services,
for the tests that need more of them than the example node makes (1,000 tasks, 50 nodes) and that publish
events themselves to stream frames at the page. No dispatcher or monitor runs: the test is the system."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn

from skalds.application.node_runtime import NodeIdentity
from skalds.application.tasks import TaskDraft
from skalds.bootstrap import Services, build_container, build_node
from skalds.config import Settings
from skalds.entrypoints.api.app import create_app
from tests.browser.conftest import free_port

CLASS = "Scale"


async def _idle_worker(ctx: object) -> None:
    await asyncio.Event().wait()


@dataclass
class Served:
    base_url: str
    services: Services


async def serve(*, tasks: int, nodes: int) -> AsyncIterator[Served]:
    app = create_app(build_container(Settings()), run_loops=False)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)  # the grace: open event streams never end by themselves
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    services: Services = app.state.services
    for n in range(nodes):
        identity = NodeIdentity(id=f"node-{n:02d}", supported_classes=frozenset({CLASS, f"Other{n % 7}"}))
        await build_node(services, identity, {CLASS: _idle_worker}).register()
    for t in range(tasks):
        await services.tasks.create(TaskDraft(class_name=CLASS, id=f"scale-{t:04d}", priority=t % 5))
    try:
        yield Served(base_url=f"http://127.0.0.1:{port}", services=services)
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 15)
