"""Heartbeat verdicts: liveness and progress are separate, and silence only ever makes things worse."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skalds.domain.errors import ValidationError
from skalds.domain.heartbeat import (
    SEVERITY,
    HeartbeatPolicy,
    HeartbeatReport,
    Outcome,
    Verdict,
    interpret,
    progress_changed_at,
)
from skalds.domain.upstream_codes import from_upstream_code, to_upstream_code
from tests.unit.domain.builders import running_task

POLICY = HeartbeatPolicy(
    suspect_after_ms=10_000, dead_after_ms=30_000, stall_after_ms=60_000, first_heartbeat_grace_ms=20_000
)
TASK = running_task(at=0)  # started at 100


def beat(at: int, progress: float | None = None, **fields: object) -> HeartbeatReport:
    return HeartbeatReport(received_at=at, progress=progress, **fields)  # type: ignore[arg-type]


def test_no_heartbeat_within_the_grace_period_is_starting() -> None:
    assert interpret(TASK, [], now=20_000, policy=POLICY) is Verdict.STARTING


def test_no_heartbeat_after_the_grace_period_is_suspect_then_dead() -> None:
    assert interpret(TASK, [], now=20_101, policy=POLICY) is Verdict.SUSPECT
    assert interpret(TASK, [], now=50_101, policy=POLICY) is Verdict.DEAD


def test_recent_heartbeats_without_progress_mean_alive() -> None:
    assert interpret(TASK, [beat(1_000), beat(4_000)], now=5_000, policy=POLICY) is Verdict.ALIVE


def test_moving_progress_means_progressing() -> None:
    reports = [beat(1_000, 10), beat(4_000, 20)]
    assert interpret(TASK, reports, now=5_000, policy=POLICY) is Verdict.PROGRESSING


def test_heartbeats_with_frozen_progress_mean_stalled_not_dead() -> None:
    reports = [beat(1_000, 42), *[beat(t, 42) for t in range(4_000, 70_000, 3_000)]]
    assert interpret(TASK, reports, now=70_000, policy=POLICY) is Verdict.STALLED


def test_a_store_stamped_progress_change_time_shows_a_stall_from_one_report() -> None:
    reports = [beat(69_000, 42, progress_changed_at=1_000)]
    assert interpret(TASK, reports, now=70_000, policy=POLICY) is Verdict.STALLED


def test_a_paused_worker_is_not_stalled() -> None:
    reports = [beat(1_000, 42), beat(69_000, 42, paused=True)]
    assert interpret(TASK, reports, now=70_000, policy=POLICY) is Verdict.PROGRESSING


def test_stall_detection_can_be_disabled() -> None:
    policy = HeartbeatPolicy(stall_after_ms=None)
    reports = [beat(1_000, 42), beat(69_000, 42)]
    assert interpret(TASK, reports, now=70_000, policy=policy) is Verdict.PROGRESSING


def test_silence_makes_a_worker_suspect_then_dead() -> None:
    reports = [beat(1_000, 5)]
    assert interpret(TASK, reports, now=11_001, policy=POLICY) is Verdict.SUSPECT
    assert interpret(TASK, reports, now=31_001, policy=POLICY) is Verdict.DEAD


@pytest.mark.parametrize(
    ("outcome", "verdict"),
    [
        (Outcome.FINISHED, Verdict.FINISHED),
        (Outcome.FAILED, Verdict.FAILED),
        (Outcome.CANCELLED, Verdict.CANCELLED),
    ],
)
def test_a_reported_outcome_wins_over_silence(outcome: Outcome, verdict: Verdict) -> None:
    reports = [beat(1_000), beat(2_000, outcome=outcome)]
    assert interpret(TASK, reports, now=999_999, policy=POLICY) is verdict


def test_progress_changed_at_finds_when_the_latest_value_first_appeared() -> None:
    assert progress_changed_at([beat(1, 1), beat(2, 2), beat(3, 2), beat(4, 2)]) == 2
    assert progress_changed_at([beat(1), beat(2)]) is None


def test_a_policy_with_dead_before_suspect_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValidationError) as refused:
        HeartbeatPolicy(suspect_after_ms=10_000, dead_after_ms=5_000)
    assert refused.value.field == "heartbeat.deadAfterMs"


reports_strategy = st.lists(
    st.builds(
        HeartbeatReport,
        received_at=st.integers(0, 100_000),
        sequence=st.integers(0, 1_000),
        progress=st.none() | st.integers(0, 3).map(float),
        paused=st.booleans(),
    ),
    max_size=6,
).map(lambda rs: sorted(rs, key=lambda r: r.received_at))


@given(reports=reports_strategy, start=st.integers(0, 200_000), later=st.integers(0, 200_000))
def test_a_silent_workers_verdict_only_gets_worse(
    reports: list[HeartbeatReport], start: int, later: int
) -> None:
    first = interpret(TASK, reports, now=start, policy=POLICY)
    second = interpret(TASK, reports, now=start + later, policy=POLICY)
    assert SEVERITY[second] >= SEVERITY[first]


@given(code=st.sampled_from([-2, -1, 200]) | st.integers(0, 199), at=st.integers(0, 10**13))
def test_upstream_codes_round_trip(code: int, at: int) -> None:
    report = from_upstream_code(code, received_at=at)
    assert to_upstream_code(report) == code
    assert report.received_at == at


UPSTREAM_OUTCOMES = [outcome for outcome in Outcome if outcome is not Outcome.RELEASED]


def test_a_released_worker_reads_to_upstream_as_stopped() -> None:
    report = HeartbeatReport(received_at=5, outcome=Outcome.RELEASED)
    assert to_upstream_code(report) == -2


@given(sequence=st.integers(0, 10**9), outcome=st.none() | st.sampled_from(UPSTREAM_OUTCOMES))
def test_reports_round_trip_through_upstream_codes_keeping_their_meaning(
    sequence: int, outcome: Outcome | None
) -> None:
    report = HeartbeatReport(received_at=5, sequence=sequence, outcome=outcome)
    back = from_upstream_code(to_upstream_code(report), received_at=5)
    assert back.outcome == outcome
    assert 0 <= to_upstream_code(report) <= 199 or outcome is not None


@pytest.mark.parametrize("code", [-3, 201, 1_000])
def test_codes_upstream_never_wrote_are_refused(code: int) -> None:
    with pytest.raises(ValidationError, match="0-199"):
        from_upstream_code(code, received_at=0)
