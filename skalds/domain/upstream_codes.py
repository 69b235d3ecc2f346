"""Upstream Skalds' integer heartbeat codes, for edges that talk to old workers or old monitors.

Upstream wrote a random 0-199 while alive, 200 when finished, -1 when failed and -2 when cancelled. We write
the beat's sequence number modulo 200 instead of a random value: it still varies (old monitors want more
than 3 distinct values among 5) and it is reproducible. Verdicts never look at these codes.
"""

from __future__ import annotations

from skalds.domain.errors import ValidationError
from skalds.domain.heartbeat import HeartbeatReport, Outcome
from skalds.domain.task import TaskStatus

FINISHED_CODE = 200
FAILED_CODE = -1
CANCELLED_CODE = -2
ALIVE_RANGE = range(200)

_CODE_OF = {Outcome.FINISHED: FINISHED_CODE, Outcome.FAILED: FAILED_CODE, Outcome.CANCELLED: CANCELLED_CODE}
_OUTCOME_OF = {code: outcome for outcome, code in _CODE_OF.items()}
# Upstream had no "released" (a worker its node stopped and handed back): to its readers the worker was
# stopped, which -2 says; read back, -2 is cancelled.
_CODE_OF[Outcome.RELEASED] = CANCELLED_CODE
_CODE_OF_STATUS = {
    TaskStatus.FINISHED: FINISHED_CODE,
    TaskStatus.FAILED: FAILED_CODE,
    TaskStatus.CANCELLED: CANCELLED_CODE,
}


def to_upstream_code(report: HeartbeatReport) -> int:
    if report.outcome is not None:
        return _CODE_OF[report.outcome]
    return report.sequence % len(ALIVE_RANGE)


def code_for_status(status: TaskStatus, sequence: int | None = None) -> int:
    """The code upstream's readers expect beside ``status``: its outcome code once the task is over, else
    the beat's alive value (0 when there is no beat to speak of, as upstream read a missing key)."""
    if status in _CODE_OF_STATUS:
        return _CODE_OF_STATUS[status]
    return 0 if sequence is None else sequence % len(ALIVE_RANGE)


def from_upstream_code(code: int, *, received_at: int) -> HeartbeatReport:
    """A report from an upstream heartbeat value; raises ValidationError for codes upstream never wrote."""
    if code in _OUTCOME_OF:
        return HeartbeatReport(received_at=received_at, outcome=_OUTCOME_OF[code], sequence=0)
    if code in ALIVE_RANGE:
        return HeartbeatReport(received_at=received_at, sequence=code)
    raise ValidationError("heartbeat", f"upstream codes are 0-199, 200, -1 or -2; got {code}")
