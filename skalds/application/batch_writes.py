"""Compare-and-set a batch of lifecycle changes, then publish and log the ones that won: the one way the
monitor and the dispatcher write many tasks at once.

A change's events (and the messages that follow from it, such as the assignment command) go out only when
its write won; a lost write is someone else's change, so it says nothing. Everything a batch sends leaves in
one ``publish_many``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from skalds.application.operator_log import log_task_change
from skalds.domain.commands import NodeCommand
from skalds.domain.events import DomainEvent, TaskEvent
from skalds.domain.ports import EventPublisher, TaskRepository
from skalds.domain.task import Task

Message = DomainEvent | NodeCommand


@dataclass(frozen=True, slots=True)
class Change:
    """``task`` as it should be stored if the stored version is still ``expected_version``."""

    task: Task
    expected_version: int
    events: Sequence[TaskEvent]
    then: Sequence[Message] = ()  # sent after the events, only when the write won


async def write_changes(
    repository: TaskRepository,
    publisher: EventPublisher,
    changes: Sequence[Change],
    *,
    logger: logging.Logger,
    by: str,
    before: Sequence[Message] = (),
    after: Callable[[set[str]], Sequence[Message]] | None = None,
) -> set[str]:
    """Store ``changes`` with one batched compare-and-set and publish ``before``, each won change's events
    and follow-ups, then what ``after`` gives for the ids that lost, in one batch. Returns those ids."""
    lost = (
        set(await repository.update_many([(c.task, c.expected_version) for c in changes]))
        if changes
        else set()
    )
    out: list[Message] = list(before)
    for change in changes:
        if change.task.id in lost:
            continue
        for event in change.events:
            log_task_change(logger, change.task, event, by=by)
        out.extend(change.events)
        out.extend(change.then)
    if after is not None:
        out.extend(after(lost))
    if out:
        await publisher.publish_many(out)
    return lost
