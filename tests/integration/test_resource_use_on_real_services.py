"""Resource use on Redis, Kafka and a MongoDB-wire server: the numbers a node measures of itself and of a
busy worker process travel through the real live-state store to the dispatcher and the alert rule."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from skalds.bootstrap import build_container, start, stop
from tests.fakes import FakeClock
from tests.integration.test_whole_system_on_real_services import real_settings
from tests.unit.application.harness import SteerableWorkers, System, settings_for_tests
from tests.unit.process.test_resource_use import (
    a_busy_worker_is_measured_and_acted_on,
    low_threshold_settings,
)


@pytest.fixture
async def system(kafka_bootstrap: str, redis_url: str, mongo_url: str, unique: str) -> AsyncIterator[System]:
    sections = low_threshold_settings(**real_settings(kafka_bootstrap, redis_url, mongo_url, unique))
    container = build_container(settings_for_tests(**sections))
    services = await start(container)  # the system clock: Kafka's group join takes real time
    built = System(services=services, clock=FakeClock(), workers=SteerableWorkers())
    try:
        yield built
    finally:
        await built.close()
        await stop(container)


async def test_a_busy_worker_is_measured_and_acted_on_real_services(system: System) -> None:
    await a_busy_worker_is_measured_and_acted_on(system)
