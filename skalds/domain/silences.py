"""Silences: "do not notify about this rule on this subject until then" (Alertmanager's word).

A silence matches an alert by rule and subject, either of which may be ``*``. It is active from
``starts_at`` until ``ends_at``; expiring it early sets ``ends_at`` to now, as Alertmanager does. Silenced
alerts are still recorded and listed; only their notifications wait.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from skalds.domain.alerts import MAX_NAME_CHARS, Alert, AlertRule, person
from skalds.domain.errors import AlertStateError, ValidationError

ANY = "*"
MAX_DURATION_MS = 366 * 24 * 3_600_000
MAX_COMMENT_CHARS = 1_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Silence:
    id: str
    rule: str  # an AlertRule value or ``*``
    subject: str  # a node id, task id, ``tasks``, or ``*``
    starts_at: int
    ends_at: int
    created_by: str
    comment: str = ""
    expired_by: str | None = None

    def active_at(self, now: int) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, alert: Alert, now: int) -> bool:
        return (
            self.active_at(now)
            and self.rule in (ANY, alert.rule.value)
            and self.subject in (ANY, alert.subject)
        )

    def expired(self, *, by: str, at: int) -> Silence:
        """Ended early by someone: from now on it matches nothing."""
        if not self.active_at(at):
            raise AlertStateError("silence", self.id, "expired", "expire", f"it ended at {self.ends_at}")
        return replace(self, ends_at=at, expired_by=person("by", by))


def new_silence(
    *, silence_id: str, rule: str, subject: str, duration_ms: int, created_by: str, comment: str, now: int
) -> Silence:
    """A silence from what an operator typed, refused with the field named when it makes no sense."""
    rules = {r.value for r in AlertRule}
    if rule != ANY and rule not in rules:
        raise ValidationError("rule", f"must be one of {', '.join(sorted(rules))} or '*', got {rule!r}")
    subject = subject.strip()
    if not subject or len(subject) > MAX_NAME_CHARS:
        raise ValidationError("subject", f"must be 1 to {MAX_NAME_CHARS} characters or '*'")
    if rule == ANY and subject == ANY:
        raise ValidationError("subject", "a silence of every rule on every subject would mute all alerts")
    if not 0 < duration_ms <= MAX_DURATION_MS:
        raise ValidationError(
            "durationMs", f"must be 1 to {MAX_DURATION_MS} ms (366 days), got {duration_ms}"
        )
    if len(comment) > MAX_COMMENT_CHARS:
        raise ValidationError("comment", f"must be at most {MAX_COMMENT_CHARS} characters")
    return Silence(
        id=silence_id,
        rule=rule,
        subject=subject,
        starts_at=now,
        ends_at=now + duration_ms,
        created_by=person("createdBy", created_by),
        comment=comment,
    )


def silencing(silences: Iterable[Silence], alert: Alert, now: int) -> Silence | None:
    """The silence that mutes ``alert`` now (the one that lasts longest), or None."""
    matching = [s for s in silences if s.matches(alert, now)]
    return max(matching, key=lambda s: s.ends_at) if matching else None
