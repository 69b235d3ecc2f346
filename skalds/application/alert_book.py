"""The alerts themselves, from firing to resolved: grouping, acknowledgements, silences, and who is told.

Rules (``alerts.AlertService``) say *that* something fired or cleared; the book decides what that means:
a second firing of a firing rule and subject is counted into it, a silence mutes the channels but not the
record, and the channels hear a resolve only for an alert they heard fire. State lives in this process
(the controller that runs the rules), like the rules' own windows; every change is an event on the bus and
an INFO line naming the alert, its rule, its subject and why.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from skalds.domain import events as ev
from skalds.domain.alerts import Alert, AlertRule, Severity
from skalds.domain.errors import AlertNotFoundError
from skalds.domain.ports import Clock, EventPublisher, IdGenerator, NotificationChannel
from skalds.domain.silences import Silence, new_silence, silencing

log = logging.getLogger(__name__)


class AlertBook:
    def __init__(
        self,
        publisher: EventPublisher,
        clock: Clock,
        ids: IdGenerator,
        channels: Sequence[NotificationChannel],
        *,
        history_limit: int = 1_000,
        silence_limit: int = 200,
    ) -> None:
        self._publisher = publisher
        self._clock = clock
        self._ids = ids
        self._channels = list(channels)
        self._active: dict[tuple[AlertRule, str], Alert] = {}
        self._history: dict[str, Alert] = {}  # insertion-ordered, oldest first
        self._history_limit = history_limit
        self._silences: dict[str, Silence] = {}  # insertion-ordered, oldest first
        self._silence_limit = silence_limit
        self._ended_ids: set[str] = set()  # silences whose end was announced
        self.fired: dict[str, int] = {}  # rule -> alerts raised since start

    def active(self) -> list[Alert]:
        return sorted(self._active.values(), key=lambda a: a.raised_at, reverse=True)

    def history(self, limit: int = 100) -> list[Alert]:
        """Newest first, resolved ones included."""
        return list(reversed(self._history.values()))[:limit]

    def get(self, alert_id: str) -> Alert:
        alert = self._history.get(alert_id) or next(
            (a for a in self._active.values() if a.id == alert_id), None
        )
        if alert is None:
            raise AlertNotFoundError("alert", alert_id)
        return alert

    async def fire(
        self, rule: AlertRule, subject: str, severity: Severity, message: str, *, occurrence: bool
    ) -> None:
        """``occurrence``: a new happening (a task failed again) counts; a reading still over its
        threshold only refreshes the text."""
        now = self._clock.now_ms()
        current = self._active.get((rule, subject))
        if current is not None:
            if occurrence:
                again = current.fired_again(severity=severity, message=message, at=now)
                self._keep(again)
                log.info(
                    "alert %s fired again (%d times): rule=%s subject=%s reason=%s",
                    again.id,
                    again.count,
                    rule.value,
                    subject,
                    message,
                )
                await self._publisher.publish(
                    ev.AlertRepeated(
                        at=now,
                        alert_id=again.id,
                        rule=rule.value,
                        subject=subject,
                        severity=severity.value,
                        message=message,
                        count=again.count,
                    )
                )
            elif message != current.message or severity != current.severity:
                self._keep(current.still_true(severity=severity, message=message, at=now))
            return
        alert = Alert(
            id=self._ids.new_id(),
            rule=rule,
            severity=severity,
            subject=subject,
            message=message,
            raised_at=now,
        )
        muted = silencing(self._silences.values(), alert, now)
        alert = replace(alert, silenced_by=muted.id if muted else None, notified=muted is None)
        self._keep(alert)
        self.fired[rule.value] = self.fired.get(rule.value, 0) + 1
        reason = f"{message} (silenced by {muted.id})" if muted else message
        log.info("alert %s firing: rule=%s subject=%s reason=%s", alert.id, rule.value, subject, reason)
        await self._publisher.publish(
            ev.AlertRaised(
                at=now,
                alert_id=alert.id,
                rule=rule.value,
                severity=severity.value,
                subject=subject,
                message=message,
                silenced_by=alert.silenced_by,
            )
        )
        if alert.notified:
            await self._notify(alert)

    async def resolve(self, rule: AlertRule, subject: str, reason: str) -> None:
        alert = self._active.get((rule, subject))
        if alert is None:
            return
        now = self._clock.now_ms()
        resolved = alert.resolved(at=now)
        self._keep(resolved)
        log.info("alert %s resolved: rule=%s subject=%s reason=%s", alert.id, rule.value, subject, reason)
        await self._publisher.publish(
            ev.AlertResolved(
                at=now, alert_id=alert.id, rule=rule.value, subject=subject, raised_at=alert.raised_at
            )
        )
        if alert.notified:  # the channels heard it fire; they must hear it went away
            await self._notify(resolved)

    async def acknowledge(self, alert_id: str, by: str) -> Alert:
        alert = self.get(alert_id)
        now = self._clock.now_ms()
        acknowledged = alert.acknowledged(by=by, at=now)
        if acknowledged is alert:
            return alert
        self._keep(acknowledged)
        log.info(
            "alert %s acknowledged: rule=%s subject=%s reason=acknowledged by %s",
            alert.id,
            alert.rule.value,
            alert.subject,
            acknowledged.acknowledged_by,
        )
        await self._publisher.publish(
            ev.AlertAcknowledged(
                at=now,
                alert_id=alert.id,
                rule=alert.rule.value,
                subject=alert.subject,
                by=acknowledged.acknowledged_by or by,
            )
        )
        return acknowledged

    def silences(self, *, active_only: bool = False) -> list[Silence]:
        """Newest first; ended ones too unless ``active_only`` (a bounded number of them)."""
        now = self._clock.now_ms()
        found = reversed(self._silences.values())
        return [s for s in found if s.active_at(now) or not active_only]

    def get_silence(self, silence_id: str) -> Silence:
        silence = self._silences.get(silence_id)
        if silence is None:
            raise AlertNotFoundError("silence", silence_id)
        return silence

    async def silence(
        self, *, rule: str, subject: str, duration_ms: int, created_by: str, comment: str = ""
    ) -> Silence:
        now = self._clock.now_ms()
        silence = new_silence(
            silence_id=self._ids.new_id(),
            rule=rule,
            subject=subject,
            duration_ms=duration_ms,
            created_by=created_by,
            comment=comment,
            now=now,
        )
        self._silences[silence.id] = silence
        self._trim_silences(now)
        log.info(
            "silence %s created: rule=%s subject=%s reason=by %s until %d: %s",
            silence.id,
            rule,
            silence.subject,
            silence.created_by,
            silence.ends_at,
            comment,
        )
        await self._publisher.publish(
            ev.SilenceCreated(
                at=now,
                silence_id=silence.id,
                rule=rule,
                subject=silence.subject,
                ends_at=silence.ends_at,
                created_by=silence.created_by,
                comment=comment,
            )
        )
        await self._rematch(now)
        return silence

    async def expire_silence(self, silence_id: str, by: str) -> Silence:
        now = self._clock.now_ms()
        expired = self.get_silence(silence_id).expired(by=by, at=now)
        self._silences[silence_id] = expired
        await self._ended(expired, now, f"expired by {expired.expired_by}")
        return expired

    async def expire_due(self) -> None:
        """Silences whose time ran out end here (the rules call this every cycle)."""
        now = self._clock.now_ms()
        due = [s for s in self._silences.values() if s.ends_at <= now and s.id not in self._ended_ids]
        for silence in due:
            await self._ended(silence, now, "its time ran out")

    async def _ended(self, silence: Silence, now: int, reason: str) -> None:
        self._ended_ids.add(silence.id)
        log.info(
            "silence %s ended: rule=%s subject=%s reason=%s",
            silence.id,
            silence.rule,
            silence.subject,
            reason,
        )
        await self._publisher.publish(
            ev.SilenceExpired(
                at=now,
                silence_id=silence.id,
                rule=silence.rule,
                subject=silence.subject,
                by=silence.expired_by,
            )
        )
        await self._rematch(now)

    async def _rematch(self, now: int) -> None:
        """Firing alerts follow the silences: newly matched ones are muted from now on; ones no silence
        mutes any more are told to the channels now if they never were."""
        for alert in list(self._active.values()):
            muted = silencing(self._silences.values(), alert, now)
            muted_by = muted.id if muted else None
            if muted_by == alert.silenced_by:
                continue
            tell = muted is None and not alert.notified
            changed = replace(alert, silenced_by=muted_by, notified=alert.notified or tell)
            self._keep(changed)
            if tell:
                log.info(
                    "alert %s firing: rule=%s subject=%s reason=no silence mutes it any more",
                    alert.id,
                    alert.rule.value,
                    alert.subject,
                )
                await self._notify(changed)

    def _keep(self, alert: Alert) -> None:
        if alert.active:
            self._active[alert.key] = alert
        else:
            self._active.pop(alert.key, None)
        self._history[alert.id] = alert
        if len(self._history) > self._history_limit:
            del self._history[next(iter(self._history))]  # a firing one stays in ``active()``

    def _trim_silences(self, now: int) -> None:
        ended = [s.id for s in self._silences.values() if not s.active_at(now)]
        for silence_id in ended[: max(len(self._silences) - self._silence_limit, 0)]:
            del self._silences[silence_id]
            self._ended_ids.discard(silence_id)

    async def _notify(self, alert: Alert) -> None:
        for channel in self._channels:
            try:
                await channel.notify(alert)
            except Exception:
                log.exception("notification channel %s failed for alert %s", type(channel).__name__, alert.id)
