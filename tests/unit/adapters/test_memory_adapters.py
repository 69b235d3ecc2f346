"""The in-memory adapters pass the same contract suites as the real ones, plus their own bounds."""

from __future__ import annotations

import pytest

from skalds.adapters.memory.event_bus import InMemoryEventBus
from skalds.adapters.memory.live_state import InMemoryLiveStateStore
from skalds.adapters.memory.notifications import InMemoryNotificationChannel
from skalds.adapters.memory.repository import InMemoryTaskRepository
from skalds.domain.alerts import Alert, AlertRule, Severity
from tests.contracts.event_bus import EventBusContract, created, receive
from tests.contracts.live_state_store import HOUR, LiveStateStoreContract
from tests.contracts.task_repository import TaskRepositoryContract
from tests.fakes import FakeClock


class TestInMemoryTaskRepository(TaskRepositoryContract):
    @pytest.fixture
    def repo(self) -> InMemoryTaskRepository:
        return InMemoryTaskRepository()


class TestInMemoryLiveStateStore(LiveStateStoreContract):
    @pytest.fixture
    def store(self, clock: FakeClock) -> InMemoryLiveStateStore:
        return InMemoryLiveStateStore(clock, heartbeat_ttl_ms=HOUR, node_ttl_ms=HOUR, history_limit=50)


class TestInMemoryEventBus(EventBusContract):
    @pytest.fixture
    def bus(self) -> InMemoryEventBus:
        return InMemoryEventBus()


async def test_a_slow_subscriber_loses_its_oldest_events_and_never_blocks_the_publisher() -> None:
    bus = InMemoryEventBus(event_queue_size=3)
    slow, fast = bus.events(), bus.events()
    for i in range(5):
        await bus.publish(created(f"t{i}"))
    assert slow.dropped == 2
    assert [e.task_id for e in await receive(slow, 3)] == ["t2", "t3", "t4"]
    assert [e.task_id for e in await receive(fast, 3)] == ["t2", "t3", "t4"]


async def test_commands_are_never_dropped() -> None:
    bus = InMemoryEventBus(event_queue_size=1)
    from skalds.domain.commands import CancelTask

    for i in range(100):
        await bus.publish(CancelTask(task_id=f"t{i}", node_id="n1", version=1, at=i))
    assert bus.pending_commands("n1") == 100


async def test_the_notification_channel_keeps_the_latest_alerts() -> None:
    channel = InMemoryNotificationChannel(limit=2)
    for i in range(3):
        alert = Alert(
            id=f"a{i}",
            rule=AlertRule.TASK_FAILED,
            severity=Severity.WARNING,
            subject="t",
            message="m",
            raised_at=i,
        )
        await channel.notify(alert)
    assert [a.id for a in channel.delivered] == ["a1", "a2"]
