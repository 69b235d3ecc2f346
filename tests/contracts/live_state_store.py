"""What every LiveStateStore promises. Subclass with ``store`` and ``clock`` fixtures (the store must read
time from that clock, so expiry can be tested without waiting)."""

from __future__ import annotations

import pytest

from skalds.domain.heartbeat import HeartbeatReport, Outcome
from skalds.domain.nodes import Node, NodeMode
from skalds.domain.ports import LiveStateStore
from tests.fakes import FakeClock

HOUR = 3_600_000


def beat(at: int, sequence: int = 1, **fields: object) -> HeartbeatReport:
    return HeartbeatReport(received_at=at, sequence=sequence, **fields)  # type: ignore[arg-type]


class LiveStateStoreContract:
    """The subclass provides a settable ``clock`` and a ``store`` that reads time from it, built with
    heartbeat and node TTLs of one hour and a history of 50."""

    @pytest.fixture
    def clock(self) -> FakeClock:
        raise NotImplementedError

    @pytest.fixture
    def store(self, clock: FakeClock) -> LiveStateStore:
        raise NotImplementedError

    async def test_the_latest_heartbeat_round_trips(self, store: LiveStateStore, clock: FakeClock) -> None:
        now = clock.now_ms()
        report = beat(
            now,
            3,
            progress=12.5,
            error="slow camera",
            paused=True,
            applied_attachments_version=2,
            attempt=1,
            cpu_percent=87.5,
            memory_bytes=123_456_789,
        )
        stored = await store.record_heartbeat("t1", report)
        assert stored.progress_changed_at == now
        assert (await store.latest_heartbeats(["t1"]))["t1"] == stored

    async def test_a_batch_of_heartbeats_is_stored_in_order_and_stamped_like_single_ones(
        self, store: LiveStateStore, clock: FakeClock
    ) -> None:
        start = clock.now_ms()
        await store.record_heartbeat("a", beat(start - 1_000, 1, progress=5.0))
        stored = await store.record_heartbeats(
            [
                ("a", beat(start, 2, progress=5.0)),  # progress unchanged since the single write
                ("b", beat(start, 1, progress=1.0)),
                ("b", beat(start + 1, 2, progress=2.0)),  # the same task twice: in order
                ("c", beat(start, 1)),
            ]
        )
        assert [report.sequence for report in stored] == [2, 1, 2, 1]
        assert [report.progress_changed_at for report in stored] == [start - 1_000, start, start + 1, None]
        latest = await store.latest_heartbeats(["a", "b", "c"])
        assert {task_id: report.sequence for task_id, report in latest.items()} == {"a": 2, "b": 2, "c": 1}
        assert [r.sequence for r in await store.heartbeat_history("b", 10)] == [1, 2]
        assert list(await store.record_heartbeats([])) == []

    async def test_outcomes_round_trip(self, store: LiveStateStore, clock: FakeClock) -> None:
        await store.record_heartbeat("t1", beat(clock.now_ms(), outcome=Outcome.FAILED, error="boom"))
        latest = (await store.latest_heartbeats(["t1"]))["t1"]
        assert (latest.outcome, latest.error) == (Outcome.FAILED, "boom")

    async def test_batch_reads_leave_out_tasks_without_heartbeats(
        self, store: LiveStateStore, clock: FakeClock
    ) -> None:
        for task_id in ("a", "b"):
            await store.record_heartbeat(task_id, beat(clock.now_ms()))
        assert set(await store.latest_heartbeats(["a", "b", "c"])) == {"a", "b"}
        assert dict(await store.latest_heartbeats([])) == {}

    async def test_the_store_remembers_since_when_progress_has_held(
        self, store: LiveStateStore, clock: FakeClock
    ) -> None:
        start = clock.now_ms()
        await store.record_heartbeat("t1", beat(start, 1, progress=5.0))
        await store.record_heartbeat("t1", beat(start + 1_000, 2, progress=5.0))
        held = await store.record_heartbeat("t1", beat(start + 2_000, 3, progress=5.0))
        assert held.progress_changed_at == start
        moved = await store.record_heartbeat("t1", beat(start + 3_000, 4, progress=6.0))
        assert moved.progress_changed_at == start + 3_000
        none = await store.record_heartbeat("t1", beat(start + 4_000, 5))
        assert none.progress_changed_at is None

    async def test_history_is_oldest_first_and_limited(self, store: LiveStateStore, clock: FakeClock) -> None:
        for sequence in range(1, 11):
            await store.record_heartbeat("t1", beat(clock.now_ms() + sequence, sequence))
        history = await store.heartbeat_history("t1", 5)
        assert [r.sequence for r in history] == [6, 7, 8, 9, 10]
        assert [r.sequence for r in await store.heartbeat_history("t1", 1_000)] == list(range(1, 11))
        assert list(await store.heartbeat_history("unknown", 5)) == []

    async def test_heartbeats_expire_when_no_longer_fed(
        self, store: LiveStateStore, clock: FakeClock
    ) -> None:
        await store.record_heartbeat("t1", beat(clock.now_ms(), progress=1.0))
        await store.record_heartbeat("fed", beat(clock.now_ms()))
        clock.advance(HOUR // 2)
        await store.record_heartbeat("fed", beat(clock.now_ms(), 2))
        clock.advance(HOUR // 2 + 1_000)
        assert set(await store.latest_heartbeats(["t1", "fed"])) == {"fed"}
        assert list(await store.heartbeat_history("t1", 5)) == []
        assert [r.sequence for r in await store.heartbeat_history("fed", 5)] == [1, 2]

    async def test_a_task_heard_from_again_after_expiry_starts_afresh(
        self, store: LiveStateStore, clock: FakeClock
    ) -> None:
        await store.record_heartbeat("t1", beat(clock.now_ms(), 1, progress=5.0))
        clock.advance(HOUR + 1_000)
        again = await store.record_heartbeat("t1", beat(clock.now_ms(), 2, progress=5.0))
        assert again.progress_changed_at == clock.now_ms()
        assert [r.sequence for r in await store.heartbeat_history("t1", 5)] == [2]

    async def test_forgotten_tasks_have_no_heartbeats(self, store: LiveStateStore, clock: FakeClock) -> None:
        await store.record_heartbeat("t1", beat(clock.now_ms()))
        await store.record_heartbeat("t2", beat(clock.now_ms()))
        await store.forget_tasks(["t1", "never-seen"])
        assert set(await store.latest_heartbeats(["t1", "t2"])) == {"t2"}
        assert list(await store.heartbeat_history("t1", 5)) == []
        await store.forget_tasks([])

    async def test_nodes_round_trip_and_are_listed_by_id(
        self, store: LiveStateStore, clock: FakeClock
    ) -> None:
        now = clock.now_ms()
        node = Node(
            id="n2",
            mode=NodeMode.EDGE,
            supported_classes=frozenset({"Video", "Crawler"}),
            current_tasks=frozenset({"t1"}),
            capacity=4,
            labels={"zone": "eu"},
            registered_at=now - 5_000,
            last_heartbeat_at=now,
            cpu_percent=12.5,
            memory_percent=40.0,
            draining=True,
        )
        await store.put_node(node)
        await store.put_node(Node(id="n1", registered_at=now, last_heartbeat_at=now))
        assert await store.get_node("n2") == node
        assert [n.id for n in await store.list_nodes()] == ["n1", "n2"]
        assert await store.get_node("n3") is None

    async def test_a_node_is_replaced_and_removed(self, store: LiveStateStore, clock: FakeClock) -> None:
        now = clock.now_ms()
        await store.put_node(Node(id="n1", registered_at=now, last_heartbeat_at=now))
        await store.put_node(
            Node(id="n1", registered_at=now, last_heartbeat_at=now + 1, current_tasks=frozenset({"t"}))
        )
        found = await store.get_node("n1")
        assert found is not None and found.current_tasks == frozenset({"t"})
        await store.remove_node("n1")
        assert await store.get_node("n1") is None
        assert list(await store.list_nodes()) == []

    async def test_nodes_expire_when_they_stop_reporting(
        self, store: LiveStateStore, clock: FakeClock
    ) -> None:
        now = clock.now_ms()
        await store.put_node(Node(id="n1", registered_at=now, last_heartbeat_at=now))
        await store.put_node(Node(id="n2", registered_at=now))  # registered, no heartbeat yet
        await store.put_node(Node(id="fed", registered_at=now, last_heartbeat_at=now))
        clock.advance(HOUR // 2)
        await store.put_node(Node(id="fed", registered_at=now, last_heartbeat_at=clock.now_ms()))
        clock.advance(HOUR // 2 + 1_000)
        assert await store.get_node("n1") is None
        assert await store.get_node("n2") is None
        assert [n.id for n in await store.list_nodes()] == ["fed"]

    async def test_removing_an_unknown_node_is_harmless(self, store: LiveStateStore) -> None:
        await store.remove_node("nobody")
        assert list(await store.list_nodes()) == []
