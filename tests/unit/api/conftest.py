"""The API over the in-memory container, with a fake clock; background loops are driven by the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from dependency_injector import providers
from litestar.testing import AsyncTestClient

from skalds.bootstrap import Services, build_container
from skalds.entrypoints.api.app import create_app
from tests.fakes import FakeClock
from tests.unit.application.harness import SteerableWorkers, System, settings_for_tests


@dataclass
class Api:
    client: AsyncTestClient[Any]
    services: Services
    system: System


async def open_api(**sections: Any) -> AsyncIterator[Api]:
    clock = FakeClock()
    container = build_container(settings_for_tests(**sections))
    container.clock.override(providers.Object(clock))
    app = create_app(container, run_loops=False)
    async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:  # a loopback Host
        services: Services = app.state.services
        system = System(services=services, clock=clock, workers=SteerableWorkers())
        yield Api(client=client, services=services, system=system)
        await system.close()


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async for opened in open_api():
        yield opened


@pytest.fixture
async def locked_api() -> AsyncIterator[Api]:
    async for opened in open_api(controller={"api_key": "s3cret"}):
        yield opened


@dataclass
class Served:
    """The API on a real uvicorn server on loopback, for streams (real disconnects, real framing)."""

    base_url: str
    services: Services
    system: System


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    import asyncio
    import socket

    import uvicorn

    clock = FakeClock()
    container = build_container(settings_for_tests())
    container.clock.override(providers.Object(clock))
    app = create_app(container, run_loops=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.01)
    services: Services = app.state.services
    system = System(services=services, clock=clock, workers=SteerableWorkers())
    try:
        yield Served(base_url=f"http://127.0.0.1:{port}", services=services, system=system)
    finally:
        await system.close()
        server.should_exit = True
        await asyncio.wait_for(serving, 10)


@pytest.fixture
async def guarded_api() -> AsyncIterator[Api]:
    controller = {"api_key": "s3cret", "protect_reads": True, "cors_origins": ["https://ops.example"]}
    async for opened in open_api(controller=controller):
        yield opened
