"""What happens to a task's checkpoint when an operator acts on the task: a retried Failed task resumes from
it; a retried Finished task starts from zero; a purged task takes it with it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from skalds.adapters.catalog import PydanticWorkerCatalog
from skalds.adapters.memory.checkpoints import InMemoryCheckpointStore
from skalds.adapters.memory.event_bus import InMemoryEventBus
from skalds.adapters.memory.repository import InMemoryTaskRepository
from skalds.adapters.system import Uuid4IdGenerator
from skalds.application.tasks import TaskService
from skalds.domain import lifecycle
from skalds.domain.lifecycle import TaskCommand
from skalds.domain.task import Task
from tests.contracts.checkpoints import saved
from tests.contracts.task_repository import a_task, assigned, failed
from tests.fakes import FakeClock


def finished(task: Task) -> Task:
    running = lifecycle.apply(assigned(task), TaskCommand.START, at=2_500)[0]
    return lifecycle.apply(running, TaskCommand.FINISH, at=3_000)[0]


def service_over(repository: InMemoryTaskRepository, checkpoints: InMemoryCheckpointStore) -> TaskService:
    return TaskService(
        repository,
        InMemoryEventBus(),
        FakeClock(),
        Uuid4IdGenerator(),
        PydanticWorkerCatalog(),
        checkpoints=checkpoints,
    )


@pytest.mark.parametrize(("ended", "kept"), [(failed, True), (finished, False)])
async def test_a_retry_resumes_unless_the_task_had_finished(
    ended: Callable[[Task], Task], kept: bool
) -> None:
    repository, checkpoints = InMemoryTaskRepository(), InMemoryCheckpointStore()
    await repository.insert(ended(a_task("t1")))
    await checkpoints.save_many([saved("t1", 1, 4)])
    await service_over(repository, checkpoints).retry("t1")
    assert (await checkpoints.get("t1") is not None) is kept


async def test_a_purged_task_takes_its_checkpoint_with_it() -> None:
    repository, checkpoints = InMemoryTaskRepository(), InMemoryCheckpointStore()
    await repository.insert(failed(a_task("t1")))
    await checkpoints.save_many([saved("t1", 1, 4)])
    await service_over(repository, checkpoints).delete("t1")
    assert await checkpoints.get("t1") is None
