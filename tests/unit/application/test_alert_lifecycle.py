"""An alert fires, is grouped while it fires, is acknowledged, may be silenced, and resolves with both times;
the channels hear firing and resolved once each, and never about what a silence mutes."""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from skalds.adapters.memory.event_bus import InMemoryEventBus
from skalds.adapters.memory.live_state import InMemoryLiveStateStore
from skalds.adapters.memory.notifications import InMemoryNotificationChannel
from skalds.application.alerts import AlertService
from skalds.domain import events as ev
from skalds.domain.alerts import AlertStatus, AlertThresholds
from skalds.domain.errors import AlertNotFoundError, AlertStateError, ValidationError
from skalds.domain.nodes import Node
from skalds.domain.ports import IdGenerator, Subscription
from skalds.domain.silences import ANY
from skalds.domain.task import DesiredState, TaskStatus
from tests.contracts.event_bus import drain
from tests.fakes import FakeClock

HOUR = 3_600_000


class CountingIds(IdGenerator):
    def __init__(self) -> None:
        self._next = itertools.count(1)

    def new_id(self) -> str:
        return f"id{next(self._next)}"


@dataclass
class Alerts:
    service: AlertService
    clock: FakeClock
    channel: InMemoryNotificationChannel
    live: InMemoryLiveStateStore
    events: Subscription[ev.DomainEvent]

    async def offline(self, node: str) -> None:
        await self.service.observe(ev.NodeWentOffline(at=0, node_id=node, silent_for_ms=31_000))

    async def online(self, node: str) -> None:
        await self.service.observe(ev.NodeCameOnline(at=0, node_id=node))

    async def task_failed(self, task: str, error: str) -> None:
        failed = ev.TaskFailed(
            at=0,
            task_id=task,
            version=2,
            from_status=None,
            to_status=TaskStatus.FAILED,
            desired_state=DesiredState.RUN,
            error=error,
            attempt=1,
            attempts_left=2,
        )
        await self.service.observe(failed)

    def told(self) -> list[tuple[str, str, str]]:
        return [(a.subject, a.status.value, a.message) for a in self.channel.delivered]


@pytest.fixture
async def alerts() -> AsyncIterator[Alerts]:
    clock, bus, channel = FakeClock(), InMemoryEventBus(), InMemoryNotificationChannel()
    live = InMemoryLiveStateStore(clock)
    service = AlertService(bus, live, clock, CountingIds(), [channel], thresholds=AlertThresholds())
    events = bus.events()
    yield Alerts(service=service, clock=clock, channel=channel, live=live, events=events)
    await events.close()


async def test_an_alert_fires_then_resolves_with_both_times_and_the_channel_hears_both(
    alerts: Alerts,
) -> None:
    raised = alerts.clock.now_ms()
    await alerts.offline("n1")
    alerts.clock.advance(5_000)
    await alerts.online("n1")
    [alert] = alerts.service.history()
    assert (alert.status, alert.raised_at, alert.resolved_at) == (
        AlertStatus.RESOLVED,
        raised,
        raised + 5_000,
    )
    assert [(s, status) for s, status, _ in alerts.told()] == [("n1", "firing"), ("n1", "resolved")]
    kinds = [type(e).__name__ for e in await drain(alerts.events)]
    assert kinds == ["AlertRaised", "AlertResolved"]


async def test_firing_again_while_firing_is_grouped_into_the_same_alert(alerts: Alerts) -> None:
    first = alerts.clock.now_ms()
    await alerts.task_failed("t1", "disk full")
    alerts.clock.advance(1_000)
    await alerts.task_failed("t1", "disk still full")
    [alert] = alerts.service.active()
    assert (alert.count, alert.raised_at, alert.last_seen_at) == (2, first, first + 1_000)
    assert "disk still full" in alert.message
    assert len(alerts.told()) == 1  # told once that it fires, not once per firing
    repeated = [e for e in await drain(alerts.events) if isinstance(e, ev.AlertRepeated)]
    assert [(e.alert_id, e.count) for e in repeated] == [(alert.id, 2)]
    assert alerts.service.fired == {"task_failed": 1}


async def test_a_reading_still_over_its_threshold_refreshes_the_text_without_counting(alerts: Alerts) -> None:
    now = alerts.clock.now_ms()
    for cpu in (95.0, 97.0):
        await alerts.live.put_node(Node(id="hot", registered_at=now, last_heartbeat_at=now, cpu_percent=cpu))
        await alerts.service.evaluate()
    [alert] = alerts.service.active()
    assert alert.count == 1 and "CPU 97%" in alert.message


async def test_after_it_resolved_the_same_condition_raises_a_new_alert(alerts: Alerts) -> None:
    await alerts.offline("n1")
    await alerts.online("n1")
    await alerts.offline("n1")
    [new, old] = alerts.service.history()
    assert new.id != old.id and (new.status, old.status) == (AlertStatus.FIRING, AlertStatus.RESOLVED)


async def test_acknowledging_records_who_and_when_and_a_resolved_alert_cannot_be(alerts: Alerts) -> None:
    await alerts.offline("n1")
    [alert] = alerts.service.active()
    alerts.clock.advance(2_000)
    acked = await alerts.service.book.acknowledge(alert.id, " ann ")
    assert (acked.acknowledged_by, acked.acknowledged_at) == ("ann", alerts.clock.now_ms())
    again = await alerts.service.book.acknowledge(alert.id, "bob")
    assert again.acknowledged_by == "ann"  # the first who took it
    await alerts.online("n1")
    with pytest.raises(AlertStateError) as refused:
        await alerts.service.book.acknowledge(alert.id, "ann")
    assert (refused.value.status, refused.value.command) == ("resolved", "acknowledge")
    with pytest.raises(AlertNotFoundError):
        await alerts.service.book.acknowledge("nope", "ann")
    acks = [e for e in await drain(alerts.events) if isinstance(e, ev.AlertAcknowledged)]
    assert [(e.alert_id, e.by) for e in acks] == [(alert.id, "ann")]


async def test_a_silenced_alert_is_recorded_but_the_channels_hear_neither_firing_nor_resolve(
    alerts: Alerts,
) -> None:
    silence = await alerts.service.book.silence(
        rule="node_offline", subject="n1", duration_ms=HOUR, created_by="ann", comment="maintenance"
    )
    await alerts.offline("n1")
    await alerts.offline("n2")
    by_subject = {a.subject: a for a in alerts.service.active()}
    assert by_subject["n1"].silenced_by == silence.id and by_subject["n2"].silenced_by is None
    await alerts.online("n1")
    assert alerts.told() == [("n2", "firing", by_subject["n2"].message)]
    assert alerts.service.book.get(by_subject["n1"].id).status is AlertStatus.RESOLVED


async def test_a_silence_on_every_subject_of_a_rule_mutes_them_all(alerts: Alerts) -> None:
    await alerts.service.book.silence(rule="task_failed", subject=ANY, duration_ms=HOUR, created_by="ann")
    await alerts.task_failed("t1", "boom")
    await alerts.task_failed("t2", "boom")
    assert len(alerts.service.active()) == 2 and alerts.told() == []


async def test_when_a_silence_ends_the_channels_hear_what_still_fires(alerts: Alerts) -> None:
    book = alerts.service.book
    silence = await book.silence(rule=ANY, subject="n1", duration_ms=HOUR, created_by="ann")
    await alerts.offline("n1")
    assert alerts.told() == []
    alerts.clock.advance(HOUR)
    await alerts.service.evaluate()
    assert [(s, status) for s, status, _ in alerts.told()] == [("n1", "firing")]
    assert alerts.service.active()[0].silenced_by is None
    ended = [e for e in await drain(alerts.events) if isinstance(e, ev.SilenceExpired)]
    assert [(e.silence_id, e.by) for e in ended] == [(silence.id, None)]
    await alerts.online("n1")
    assert [status for _, status, _ in alerts.told()] == ["firing", "resolved"]


async def test_expiring_a_silence_early_ends_it_once(alerts: Alerts) -> None:
    book = alerts.service.book
    silence = await book.silence(rule="node_offline", subject="n1", duration_ms=HOUR, created_by="ann")
    await alerts.offline("n1")
    expired = await book.expire_silence(silence.id, "bob")
    assert (expired.ends_at, expired.expired_by) == (alerts.clock.now_ms(), "bob")
    assert [s for s, _, _ in alerts.told()] == ["n1"]
    assert book.silences(active_only=True) == [] and book.silences() == [expired]
    with pytest.raises(AlertStateError):
        await book.expire_silence(silence.id, "bob")
    with pytest.raises(AlertNotFoundError):
        await book.expire_silence("nope", "bob")


async def test_a_silence_made_while_an_alert_fires_still_lets_its_resolve_through(alerts: Alerts) -> None:
    await alerts.offline("n1")
    await alerts.service.book.silence(rule="node_offline", subject="n1", duration_ms=HOUR, created_by="ann")
    assert alerts.service.active()[0].silenced_by is not None
    await alerts.online("n1")
    assert [status for _, status, _ in alerts.told()] == ["firing", "resolved"]  # it heard it fire


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"rule": "no_such_rule"}, "rule"),
        ({"rule": ANY, "subject": ANY}, "subject"),
        ({"subject": " "}, "subject"),
        ({"duration_ms": 0}, "durationMs"),
        ({"created_by": ""}, "createdBy"),
    ],
)
async def test_a_silence_that_makes_no_sense_is_refused_naming_the_field(
    alerts: Alerts, given: dict[str, object], field: str
) -> None:
    wanted: dict[str, object] = {
        "rule": "node_offline",
        "subject": "n1",
        "duration_ms": HOUR,
        "created_by": "ann",
    }
    with pytest.raises(ValidationError) as refused:
        await alerts.service.book.silence(**(wanted | given))  # type: ignore[arg-type]
    assert refused.value.field == field


async def test_every_change_is_logged_with_the_alert_rule_subject_and_reason(
    alerts: Alerts, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="skalds.application.alert_book")
    await alerts.offline("n1")
    [alert] = alerts.service.active()
    await alerts.service.book.acknowledge(alert.id, "ann")
    await alerts.online("n1")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(lines) == 3
    for line in lines:
        assert alert.id in line and "rule=node_offline" in line and "subject=n1" in line and "reason=" in line
    assert "reason=the node came back online" in lines[2]
