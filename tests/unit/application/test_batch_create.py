"""``TaskService.create_many``: all or none, every item checked as a single create checks it, the first bad
one named by its index; one insert and one batch of events, in order; a racing writer named by its id."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Sequence

import pytest
from dependency_injector import providers
from pydantic import BaseModel

from skalds.adapters.memory.repository import InMemoryTaskRepository
from skalds.application.tasks import TaskDraft
from skalds.bootstrap import Services, build_container, start
from skalds.domain.errors import TaskAlreadyExistsError, ValidationError
from skalds.domain.events import DomainEvent, TaskCreated
from skalds.domain.ports import Subscription, TaskQuery
from skalds.domain.task import Task, TaskStatus, new_task
from tests.fakes import FakeClock
from tests.unit.application.harness import CLASS, settings_for_tests


class Camera(BaseModel):
    fps: int = 10


class RacedRepository(InMemoryTaskRepository):
    """Another writer takes ``race_for`` between the service's check and its insert; with ``keep_prefix``
    the insert then behaves like MongoDB's ordered one and keeps the tasks before it."""

    def __init__(self) -> None:
        super().__init__()
        self.race_for: str | None = None
        self.keep_prefix = False

    async def insert_many(self, tasks: Sequence[Task]) -> None:
        if self.race_for is not None:
            await self.insert(new_task(task_id=self.race_for, class_name="Other", now=0))
            if self.keep_prefix:
                ids = [task.id for task in tasks]
                await super().insert_many(tasks[: ids.index(self.race_for)])
                raise TaskAlreadyExistsError(self.race_for)
        await super().insert_many(tasks)


async def built(repository: InMemoryTaskRepository | None = None) -> Services:
    container = build_container(settings_for_tests())
    container.clock.override(providers.Object(FakeClock()))
    container.rng.override(providers.Object(random.Random(1)))
    if repository is not None:
        container.repository.override(providers.Object(repository))
    services = await start(container)
    services.catalog.register(CLASS, Camera)
    services.catalog.register("Other")
    return services


@pytest.fixture
async def services() -> Services:
    return await built()


@pytest.fixture
async def events(services: Services) -> AsyncIterator[Subscription[DomainEvent]]:
    subscription = services.subscriber.events()
    yield subscription
    await subscription.close()


async def created_ids(subscription: Subscription[DomainEvent], count: int) -> list[str]:
    """The next ``count`` events, all TaskCreated; the generous deadline only ends a broken run."""
    seen: list[str] = []

    async def read() -> None:
        async for event in subscription:
            assert isinstance(event, TaskCreated)
            seen.append(event.task_id)
            if len(seen) == count:
                return

    await asyncio.wait_for(read(), 10)
    return seen


def drafts(count: int) -> list[TaskDraft]:
    return [TaskDraft(class_name=CLASS, id=f"t{i}", attachments={"fps": i}) for i in range(count)]


async def stored_total(services: Services) -> int:
    return (await services.tasks.list(TaskQuery())).total


async def test_a_batch_is_stored_in_order_and_announced_in_one_batch_of_events(
    services: Services, events: Subscription[DomainEvent], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="skalds.application.tasks")
    batch = [*drafts(3), TaskDraft(class_name="Other")]
    tasks = await services.tasks.create_many(batch)
    assert [task.id for task in tasks[:3]] == ["t0", "t1", "t2"]
    assert tasks[3].id  # generated
    assert all(task.lifecycle_status is TaskStatus.CREATED for task in tasks)
    assert len({task.create_date_time for task in tasks}) == 1
    assert [dict(task.attachments) for task in tasks[:3]] == [{"fps": 0}, {"fps": 1}, {"fps": 2}]
    assert await created_ids(events, 4) == [task.id for task in tasks]
    stored = await services.repository.get_many([task.id for task in tasks])
    assert [stored[task.id] for task in tasks] == tasks
    lines = [r.getMessage() for r in caplog.records if r.name == "skalds.application.tasks"]
    assert [line.split()[1] for line in lines] == [task.id for task in tasks]
    assert all(" created (Created)" in line for line in lines)


@pytest.mark.parametrize(
    ("bad", "field", "words"),
    [
        (TaskDraft(class_name="Nope"), "tasks[2].className", "unknown worker class 'Nope'"),
        (TaskDraft(class_name=CLASS, attachments={"fps": "fast"}), "tasks[2].attachments.fps", "integer"),
        (TaskDraft(class_name=CLASS, id="a b"), "tasks[2].id", "whitespace"),
        (TaskDraft(class_name=CLASS, id="t0"), "tasks[2].id", "already the id of tasks[0]"),
    ],
)
async def test_one_bad_item_creates_nothing_and_is_named_by_its_index(
    services: Services, bad: TaskDraft, field: str, words: str
) -> None:
    batch = drafts(4)
    batch[2] = bad
    with pytest.raises(ValidationError) as refused:
        await services.tasks.create_many(batch)
    assert refused.value.field == field
    assert words in str(refused.value)
    assert str(refused.value).startswith(f"{field}: ")
    assert await stored_total(services) == 0


async def test_an_id_already_stored_creates_nothing_and_names_the_item(services: Services) -> None:
    await services.tasks.create(TaskDraft(class_name=CLASS, id="t1"))
    with pytest.raises(ValidationError) as refused:
        await services.tasks.create_many(drafts(3))
    assert (refused.value.field, refused.value.reason) == ("tasks[1].id", "task 't1' already exists")
    assert await stored_total(services) == 1


async def test_an_empty_batch_is_refused(services: Services) -> None:
    with pytest.raises(ValidationError) as refused:
        await services.tasks.create_many([])
    assert refused.value.field == "tasks"


async def test_an_id_taken_during_the_insert_is_named_and_nothing_is_announced() -> None:
    repository = RacedRepository()
    services = await built(repository)
    repository.race_for = "t1"
    with pytest.raises(TaskAlreadyExistsError) as taken:
        await services.tasks.create_many(drafts(3))
    assert taken.value.task_id == "t1"
    assert sorted(await repository.get_many(["t0", "t1", "t2"])) == ["t1"]  # the other writer's only


async def test_the_tasks_an_ordered_insert_kept_before_a_race_are_announced() -> None:
    repository = RacedRepository()
    services = await built(repository)
    subscription = services.subscriber.events()
    repository.race_for, repository.keep_prefix = "t2", True
    with pytest.raises(TaskAlreadyExistsError):
        await services.tasks.create_many(drafts(4))
    assert await created_ids(subscription, 2) == ["t0", "t1"]
    assert (await repository.get("t2")).class_name == "Other"
    await subscription.close()
