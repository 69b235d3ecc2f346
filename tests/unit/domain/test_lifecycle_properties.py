"""Random command sequences against one task: the lifecycle never reaches an illegal state."""

from __future__ import annotations

import dataclasses

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from skalds.domain import lifecycle
from skalds.domain.errors import IllegalTransitionError
from skalds.domain.lifecycle import TRANSITIONS, TaskCommand
from skalds.domain.task import LIVE, TERMINAL, DesiredState, Task, TaskStatus
from tests.unit.domain.builders import a_task

LEGAL_STEPS = {(src, dst) for (src, _), dst in TRANSITIONS.items()}


class OneTaskLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.task: Task = a_task(max_attempts=3)
        self.now = 1_000
        self.history: list[TaskStatus] = [self.task.lifecycle_status]

    @rule(
        command=st.sampled_from(TaskCommand),
        executor=st.sampled_from([None, "n1", "n2"]),
        reason=st.sampled_from([None, "node offline"]),
        attachments=st.none() | st.dictionaries(st.sampled_from("abc"), st.integers(0, 9), max_size=2),
        version=st.none() | st.integers(0, 6),
        elapsed=st.integers(0, 10_000),
    )
    def send(
        self,
        *,
        command: TaskCommand,
        executor: str | None,
        reason: str | None,
        attachments: dict[str, int] | None,
        version: int | None,
        elapsed: int,
    ) -> None:
        self.now += elapsed
        before = self.task
        try:
            after, event = lifecycle.apply(
                before,
                command,
                at=self.now,
                executor=executor,
                error="boom",
                reason=reason,
                attachments=attachments,
                attachments_version=version,
                retry_at=self.now + 100,
            )
        except IllegalTransitionError as refused:
            assert refused.task_id == before.id
            assert refused.from_status == before.lifecycle_status
            return
        assert (before.lifecycle_status, command) in TRANSITIONS
        assert after.version == before.version + 1
        assert event.version == after.version
        assert (event.from_status, event.to_status) == (before.lifecycle_status, after.lifecycle_status)
        if before.lifecycle_status in TERMINAL:
            assert command in {TaskCommand.RETRY, TaskCommand.AUTO_RETRY}
        self.task = after
        self.history.append(after.lifecycle_status)

    @invariant()
    def the_fast_copy_builds_what_the_validating_constructor_would(self) -> None:
        assert dataclasses.replace(self.task) == self.task

    @invariant()
    def history_is_a_legal_path(self) -> None:
        for src, dst in zip(self.history, self.history[1:], strict=False):
            assert src == dst or (src, dst) in LEGAL_STEPS

    @invariant()
    def a_live_task_has_an_owner_and_a_queued_one_has_none(self) -> None:
        task = self.task
        if task.lifecycle_status in LIVE:
            assert task.executor is not None
        if task.lifecycle_status is TaskStatus.CREATED:
            assert task.executor is None

    @invariant()
    def attempts_stay_within_bounds(self) -> None:
        assert 0 <= self.task.attempt <= self.task.max_attempts

    @invariant()
    def a_queued_task_is_meant_to_run(self) -> None:
        if self.task.lifecycle_status is TaskStatus.CREATED:
            assert self.task.desired_state is DesiredState.RUN


TestOneTaskLifecycle = OneTaskLifecycle.TestCase
