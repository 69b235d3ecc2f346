"""The in-memory adapters pass the same contract suites as the real ones, plus their own bounds."""

from __future__ import annotations

import dataclasses

import pytest

from skalds.adapters.memory.checkpoints import InMemoryCheckpointStore
from skalds.adapters.memory.event_bus import InMemoryEventBus
from skalds.adapters.memory.live_state import InMemoryLiveStateStore
from skalds.adapters.memory.notifications import InMemoryNotificationChannel
from skalds.adapters.memory.repository import InMemoryTaskRepository
from skalds.adapters.memory.task_history import InMemoryTaskHistoryStore
from skalds.adapters.memory.task_logs import InMemoryTaskLogStore
from skalds.domain.alerts import Alert, AlertRule, Severity
from skalds.domain.commands import CancelTask
from skalds.domain.events import DomainEvent, TaskEvent
from skalds.domain.heartbeat import HeartbeatReport
from skalds.domain.ports import TaskQuery
from skalds.domain.task import TaskStatus
from tests.contracts.checkpoints import CheckpointStoreContract
from tests.contracts.event_bus import EventBusContract, created, receive
from tests.contracts.live_state_store import HOUR, LiveStateStoreContract
from tests.contracts.task_history import TaskHistoryStoreContract, change
from tests.contracts.task_logs import TaskLogStoreContract, line
from tests.contracts.task_repository import TaskRepositoryContract, a_task, assigned, ids
from tests.fakes import FakeClock


class TestInMemoryTaskRepository(TaskRepositoryContract):
    @pytest.fixture
    def repo(self) -> InMemoryTaskRepository:
        return InMemoryTaskRepository()


class TestInMemoryCheckpointStore(CheckpointStoreContract):
    @pytest.fixture
    def store(self) -> InMemoryCheckpointStore:
        return InMemoryCheckpointStore()


class TestInMemoryTaskHistoryStore(TaskHistoryStoreContract):
    @pytest.fixture
    def store(self) -> InMemoryTaskHistoryStore:
        return InMemoryTaskHistoryStore(
            changes_per_task=self.changes_per_task, points_per_task=self.points_per_task
        )

    async def test_the_tasks_written_least_recently_go_whole_beyond_the_bound(self) -> None:
        store = InMemoryTaskHistoryStore(max_tasks=2)
        for task in ("a", "b", "c"):
            await store.record([change(1, task=task)], [])
        assert (await store.timeline("a")).changes == ()
        assert len((await store.timeline("c")).changes) == 1


class TestInMemoryTaskLogStore(TaskLogStoreContract):
    @pytest.fixture
    def store(self) -> InMemoryTaskLogStore:
        return InMemoryTaskLogStore(lines_per_attempt=self.lines_per_attempt)

    async def test_the_oldest_attempts_go_whole_beyond_the_total_bound(self) -> None:
        store = InMemoryTaskLogStore(lines_per_attempt=10, max_lines=20)
        for task in ("a", "b", "c"):
            await store.append([line(seq, task=task) for seq in range(1, 11)])
        assert await store.attempts("a") == []
        assert await store.attempts("b") == [1] and await store.attempts("c") == [1]


class TestInMemoryLiveStateStore(LiveStateStoreContract):
    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock(1_700_000_000_000)

    @pytest.fixture
    def store(self, clock: FakeClock) -> InMemoryLiveStateStore:
        return InMemoryLiveStateStore(clock, heartbeat_ttl_ms=HOUR, node_ttl_ms=HOUR, history_limit=50)


class TestInMemoryEventBus(EventBusContract):
    @pytest.fixture
    def bus(self) -> InMemoryEventBus:
        return InMemoryEventBus()


async def test_a_task_whose_creation_time_changes_is_still_listed_and_deleted_once() -> None:
    repo = InMemoryTaskRepository()
    for task_id, now in (("a", 1), ("b", 2), ("c", 3)):
        await repo.insert(a_task(task_id, now=now))
    moved = dataclasses.replace(await repo.get("a"), create_date_time=9, version=2)
    await repo.update(moved, 1)
    assert ids(await repo.list(TaskQuery())) == ["a", "c", "b"]
    await repo.delete("a", 2)
    assert ids(await repo.list(TaskQuery())) == ["c", "b"]


async def test_class_names_forget_a_class_once_its_last_task_is_gone() -> None:
    repo = InMemoryTaskRepository()
    await repo.insert(a_task("v1", class_name="Video"))
    await repo.insert(a_task("v2", class_name="Video"))
    await repo.insert(a_task("c1", class_name="Crawler"))
    await repo.delete("c1", 1)
    await repo.delete("v1", 1)
    assert list(await repo.class_names()) == ["Video"]


async def test_a_status_filter_reads_the_live_few_among_many_finished() -> None:
    repo = InMemoryTaskRepository()
    for i in range(50):
        await repo.insert(a_task(f"old-{i:02}", now=i))
    for i in range(3):
        await repo.insert(assigned(a_task(f"live-{i}", now=100 - i)))
    page = await repo.list(TaskQuery(statuses=frozenset({TaskStatus.ASSIGNING}), limit=2))
    assert (ids(page), page.total) == (["live-0", "live-1"], 3)


async def test_heartbeat_history_keeps_only_the_latest_reports() -> None:
    clock = FakeClock()
    store = InMemoryLiveStateStore(clock, history_limit=3)
    for sequence in range(1, 8):
        await store.record_heartbeat("t1", HeartbeatReport(received_at=clock.now_ms(), sequence=sequence))
    assert [r.sequence for r in await store.heartbeat_history("t1", 100)] == [5, 6, 7]


def test_a_history_must_keep_at_least_the_latest_report() -> None:
    with pytest.raises(ValueError, match="history_limit"):
        InMemoryLiveStateStore(FakeClock(), history_limit=0)


async def test_a_slow_subscriber_loses_its_oldest_events_and_never_blocks_the_publisher() -> None:
    bus = InMemoryEventBus(event_queue_size=3)
    slow, fast = bus.events(), bus.events()
    for i in range(5):
        await bus.publish(created(f"t{i}"))
    assert slow.dropped == 2
    assert _task_ids(await receive(slow, 3)) == ["t2", "t3", "t4"]
    await bus.publish(created("t5"))
    assert _task_ids(await receive(fast, 3)) == ["t3", "t4", "t5"]
    assert (slow.dropped, fast.dropped) == (2, 3)
    await slow.close()
    await fast.close()


async def test_commands_are_never_dropped() -> None:
    bus = InMemoryEventBus(event_queue_size=1)
    for i in range(100):
        await bus.publish(CancelTask(task_id=f"t{i}", node_id="n1", version=1, at=i))
    assert bus.pending_commands("n1") == 100
    assert bus.pending_commands("n2") == 0


async def test_closing_a_command_subscription_leaves_the_nodes_queue_as_it_was() -> None:
    bus = InMemoryEventBus()
    await bus.publish(CancelTask(task_id="t1", node_id="n1", version=1, at=1))
    await bus.commands("n1").close()
    assert bus.pending_commands("n1") == 1
    [command] = await receive(bus.commands("n1"), 1)
    assert command.task_id == "t1"
    assert bus.pending_commands("n1") == 0


def test_an_event_queue_holds_at_least_one_event() -> None:
    with pytest.raises(ValueError, match="event_queue_size"):
        InMemoryEventBus(event_queue_size=0)


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


def _task_ids(events: list[DomainEvent]) -> list[str]:
    return [event.task_id for event in events if isinstance(event, TaskEvent)]
