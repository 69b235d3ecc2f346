"""A task's output, from a real worker process to the API's reader: what is captured, in what order, and
what an operator reads back. In memory; the same path on Kafka and Redis is in tests/integration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from skalds.adapters.process.supervisor import ProcessWorkerSupervisor
from skalds.application.tasks import TaskDraft
from skalds.domain.task import TaskStatus
from tests.unit.application.harness import System, build_system
from tests.unit.process.test_worker_processes import until
from tests.workers import Settings

S = TaskStatus
Built = tuple[System, ProcessWorkerSupervisor]


@pytest.fixture
async def system() -> AsyncIterator[Built]:
    built = await build_system()
    built.services.catalog.register("Talker", Settings)
    supervisor = await built.add_process_node("n1", {"Talker": "tests.workers:Talker"})
    keeper = asyncio.create_task(built.services.log_keeper.run(built.services.log_shipper))
    yield built, supervisor
    keeper.cancel()
    await built.close()


async def kept_lines(system: System, task_id: str, at_least: int) -> list[tuple[str, str, str, str]]:
    """(level, stream, logger, message) of the task's current attempt, once ``at_least`` are stored."""
    for _ in range(500):
        output = await system.services.task_logs.read(task_id, limit=100, tail=True)
        if len(output.page.lines) >= at_least:
            return [(x.level, x.stream.value, x.logger, x.message) for x in output.page.lines]
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {at_least} lines of {task_id} were stored")


async def test_log_records_and_prints_come_back_in_order_with_level_and_stream(system: Built) -> None:
    sys_, _ = system
    task = await sys_.services.tasks.create(TaskDraft(class_name="Talker", attachments={"fps": 1}))
    await until(sys_, task.id, S.FAILED)
    lines = await kept_lines(sys_, task.id, 7)
    assert lines[:6] == [
        ("INFO", "log", "tests.talker", f"starting {task.id}"),
        ("INFO", "stdout", "", "to stdout"),
        ("WARNING", "stderr", "", "to stderr"),
        ("INFO", "stdout", "", "in pieces"),
        ("WARNING", "log", "tests.talker", "careful: 3"),
        ("ERROR", "log", "tests.talker", lines[5][3]),
    ]
    assert lines[5][3].startswith("handled\nTraceback") and "KeyError: 'inner'" in lines[5][3]
    failure = lines[6]
    assert failure[0] == "ERROR" and "the camera went away" in failure[3] and "Traceback" in failure[3]
    assert not any("not captured" in line[3] for line in lines)  # DEBUG is below the default level


async def test_lines_are_numbered_per_attempt_and_a_reader_resumes_after_the_last_it_saw(
    system: Built,
) -> None:
    sys_, _ = system
    task = await sys_.services.tasks.create(TaskDraft(class_name="Talker", attachments={"fps": 0}))
    await until(sys_, task.id, S.FINISHED)
    await kept_lines(sys_, task.id, 6)
    first = await sys_.services.task_logs.read(task.id, limit=2)
    assert [line.seq for line in first.page.lines] == [1, 2] and first.attempt == 1
    rest = await sys_.services.task_logs.read(task.id, after=first.page.cursor)
    assert [line.seq for line in rest.page.lines] == list(range(3, 3 + len(rest.page.lines)))
    warnings = await sys_.services.task_logs.read(task.id, level="warning")
    assert {line.level for line in warnings.page.lines} == {"WARNING", "ERROR"}
    assert warnings.attempts == [1]


async def test_a_purged_task_takes_its_output_with_it(system: Built) -> None:
    sys_, _ = system
    task = await sys_.services.tasks.create(TaskDraft(class_name="Talker", attachments={"fps": 0}))
    await until(sys_, task.id, S.FINISHED)
    await kept_lines(sys_, task.id, 6)
    await sys_.services.tasks.delete(task.id)
    assert await sys_.services.task_log_store.attempts(task.id) == []
