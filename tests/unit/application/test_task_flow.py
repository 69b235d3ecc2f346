"""A task's life through the application services, on in-memory adapters with real in-process workers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from skalds.application.dispatching import Dispatcher
from skalds.application.tasks import TaskDraft
from skalds.domain.commands import AssignTask, PauseTask, ResumeTask
from skalds.domain.errors import ConflictError, IllegalTransitionError, TaskNotFoundError, ValidationError
from skalds.domain.ports import TaskQuery
from skalds.domain.task import DesiredState, TaskStatus
from tests.unit.application.harness import CLASS, System, build_system, settings_for_tests

S = TaskStatus


@pytest.fixture
async def system() -> AsyncIterator[System]:
    built = await build_system()
    yield built
    await built.close()


async def status_of(system: System, task_id: str) -> TaskStatus:
    return (await system.services.tasks.get(task_id)).lifecycle_status


async def test_a_created_task_is_assigned_runs_and_finishes(system: System) -> None:
    await system.add_node("n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS, attachments={"fps": 10}))
    assert task.lifecycle_status is S.CREATED
    assert task.id  # generated
    await system.cycle()
    stored = await system.services.tasks.get(task.id)
    assert (stored.lifecycle_status, stored.executor, stored.attempt) == (S.RUNNING, "n1", 1)
    system.workers.control(task.id).finish = True
    await system.settle()
    await system.cycle()
    stored = await system.services.tasks.get(task.id)
    assert stored.lifecycle_status is S.FINISHED
    assert stored.finished_at is not None


async def test_progress_is_visible_in_the_heartbeat_history(system: System) -> None:
    await system.add_node("n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await system.cycle()
    system.workers.control(task.id).progress = 42
    await system.settle()
    await system.cycle()
    history = await system.services.queries.heartbeat_history(task.id)
    assert history[-1].progress == 42
    assert [r.sequence for r in history] == sorted(r.sequence for r in history)


async def test_cancelling_a_running_task_stops_its_worker_then_confirms(system: System) -> None:
    await system.add_node("n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await system.cycle()
    cancelling = await system.services.tasks.cancel(task.id)
    assert (cancelling.lifecycle_status, cancelling.desired_state) == (S.RUNNING, DesiredState.CANCEL)
    await system.settle()
    await system.cycle()
    assert await status_of(system, task.id) is S.CANCELLED


async def test_a_worker_that_ignores_cancel_is_stopped_after_the_grace_period(system: System) -> None:
    await system.add_node("n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await system.cycle()
    system.workers.control(task.id).ignore_cancel = True
    await system.services.tasks.cancel(task.id)
    await system.settle(0.1)  # the in-process supervisor's grace is 0.05 s in the harness
    await system.cycle()
    assert await status_of(system, task.id) is S.CANCELLED


async def test_cancelling_a_queued_task_is_immediate(system: System) -> None:
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    assert (await system.services.tasks.cancel(task.id)).lifecycle_status is S.CANCELLED


async def test_pause_and_resume_are_confirmed_by_the_worker(system: System) -> None:
    await system.add_node("n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await system.cycle()
    await system.services.tasks.pause(task.id)
    await system.settle()
    await system.cycle()
    assert await status_of(system, task.id) is S.PAUSED
    await system.services.tasks.resume(task.id)
    await system.settle()
    await system.cycle()
    assert await status_of(system, task.id) is S.RUNNING


async def test_a_late_or_repeated_pause_never_undoes_a_later_resume(system: System) -> None:
    """At-least-once delivery on separate topics: a pause can arrive twice, or after the resume that
    followed it. The node obeys each pause / resume once, and never one older than the last it obeyed."""
    node = await system.add_node("n1", listening=False)
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await system.services.dispatcher.dispatch_once()
    assigned = await system.services.tasks.get(task.id)
    await node.handle(AssignTask(task_id=task.id, node_id="n1", version=assigned.version, at=0, attempt=1))
    await system.settle()
    pause = PauseTask(task_id=task.id, node_id="n1", version=assigned.version + 1, at=0)
    resume = ResumeTask(task_id=task.id, node_id="n1", version=assigned.version + 2, at=0)
    await node.handle(resume)
    await node.handle(pause)  # overtaken: dropped
    await system.settle()
    assert system.nodes["n1"]._supervisor.states()[task.id].paused is False
    later_pause = PauseTask(task_id=task.id, node_id="n1", version=assigned.version + 3, at=0)
    await node.handle(later_pause)
    await system.settle()
    assert system.nodes["n1"]._supervisor.states()[task.id].paused is True
    await node.handle(resume)  # older than the pause just obeyed: dropped
    await system.settle()
    assert system.nodes["n1"]._supervisor.states()[task.id].paused is True


async def test_attachment_updates_reach_the_running_worker_and_are_acknowledged(system: System) -> None:
    await system.add_node("n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS, attachments={"fps": 10}))
    await system.cycle()
    updated = await system.services.tasks.update_attachments(task.id, {"fps": 25})
    assert updated.attachments_version == 2
    await system.settle()
    await system.cycle()
    assert system.workers.control(task.id).updates == [({"fps": 25}, 2)]
    assert (await system.services.tasks.get(task.id)).applied_attachments_version == 2


async def test_a_rejected_update_is_reported_and_not_acknowledged(system: System) -> None:
    await system.add_node("n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await system.cycle()
    system.workers.control(task.id).reject_updates = True
    await system.services.tasks.update_attachments(task.id, {"fps": 1})
    await system.settle()
    await system.cycle()
    stored = await system.services.tasks.get(task.id)
    assert stored.applied_attachments_version is None
    latest = await system.services.queries.latest_heartbeat(task.id)
    assert latest is not None and "rejects updates" in (latest.error or "")


async def test_a_failing_worker_is_retried_with_backoff_up_to_max_attempts(system: System) -> None:
    await system.add_node("n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS, max_attempts=2))
    await system.cycle()
    system.workers.control(task.id).fail = "camera unreachable"
    await system.settle()
    await system.cycle()
    failed = await system.services.tasks.get(task.id)
    assert failed.lifecycle_status is S.FAILED
    assert "RuntimeError: camera unreachable" in (failed.last_error or "")
    assert failed.retry_at is not None
    system.workers.control(task.id).fail = None
    await system.cycle(advance_ms=500)  # backoff (1 s) not over yet
    assert await status_of(system, task.id) is S.FAILED
    await system.cycle(advance_ms=1_000)  # retried, re-assigned, running again
    again = await system.services.tasks.get(task.id)
    assert (again.lifecycle_status, again.attempt) == (S.RUNNING, 2)
    system.workers.control(task.id).fail = "still broken"
    await system.settle()
    await system.cycle()
    final = await system.services.tasks.get(task.id)
    assert (final.lifecycle_status, final.retry_at) == (S.FAILED, None)


async def test_an_offline_nodes_task_is_requeued_to_another_node_and_the_old_node_fences_itself(
    system: System,
) -> None:
    await system.add_node("n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await system.cycle()
    await system.add_node("n2")
    for _ in range(20):  # n1 falls silent; n2 keeps beating
        await system.cycle(beating=("n2",))
    moved = await system.services.tasks.get(task.id)
    assert (moved.lifecycle_status, moved.executor, moved.attempt) == (S.RUNNING, "n2", 2)
    await system.beat("n1")  # n1 comes back: its worker must stop, the task is no longer its own
    await system.settle(0.1)
    await system.beat("n1")
    assert task.id not in system.nodes["n1"]._supervisor.states()


async def test_a_task_no_node_can_take_waits_with_a_reason(system: System) -> None:
    await system.add_node("n1", classes=frozenset({"Other"}))
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await system.cycle()
    assert await status_of(system, task.id) is S.CREATED
    reason = system.services.dispatcher.pending_reason(task.id)
    assert reason == "no eligible node (1 without class 'Steerable')"


async def test_an_assignment_nobody_starts_is_requeued_after_the_timeout(system: System) -> None:
    await system.add_node("deaf", listening=False)
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await system.cycle()
    assert await status_of(system, task.id) is S.ASSIGNING
    await system.cycle(advance_ms=10_001)
    requeued = await system.services.tasks.get(task.id)
    assert (requeued.lifecycle_status, requeued.executor, requeued.attempt) == (S.CREATED, None, 1)
    await system.cycle()
    assert (await system.services.tasks.get(task.id)).attempt == 2


async def test_two_dispatchers_never_assign_a_task_twice(system: System) -> None:
    await system.add_node("n1")
    await system.add_node("n2")
    for i in range(50):
        await system.services.tasks.create(TaskDraft(id=f"t{i}", class_name=CLASS))
    services = system.services
    second = Dispatcher(
        services.repository,
        services.live_state,
        services.publisher,
        system.clock,
        strategy=services.dispatcher.strategy,
        policy=services.settings.heartbeat.policy(),
        rng=random.Random(2),
    )
    first, other = await asyncio.gather(services.dispatcher.dispatch_once(), second.dispatch_once())
    assert first.assigned + other.assigned == 50
    page = await services.tasks.list(TaskQuery(statuses=frozenset({S.ASSIGNING}), limit=None))
    assert len(page.items) == 50
    assert all(t.attempt == 1 for t in page.items)


async def test_a_stale_version_is_a_conflict_and_changes_nothing(system: System) -> None:
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS, attachments={"a": 1}))
    await system.services.tasks.update_attachments(task.id, {"a": 2})
    with pytest.raises(ConflictError):
        await system.services.tasks.update_attachments(task.id, {"a": 3}, expected_version=task.version)
    assert dict((await system.services.tasks.get(task.id)).attachments) == {"a": 2}


async def test_illegal_changes_are_refused(system: System) -> None:
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    with pytest.raises(IllegalTransitionError):
        await system.services.tasks.pause(task.id)
    with pytest.raises(IllegalTransitionError):
        await system.services.tasks.retry(task.id)


async def test_a_live_task_cannot_be_deleted_but_a_finished_one_can(system: System) -> None:
    await system.add_node("n1")
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await system.cycle()
    with pytest.raises(IllegalTransitionError, match="cancel it first"):
        await system.services.tasks.delete(task.id)
    queued = await system.services.tasks.create(TaskDraft(class_name="Unplaceable"))
    await system.services.tasks.delete(queued.id)
    with pytest.raises(TaskNotFoundError):
        await system.services.tasks.get(queued.id)


@pytest.mark.parametrize(
    ("draft", "field"),
    [
        (TaskDraft(class_name=CLASS, id="has space"), "id"),
        (TaskDraft(class_name=CLASS, id="a/b"), "id"),
        (TaskDraft(class_name=CLASS, priority=11), "priority"),
        (TaskDraft(class_name=CLASS, attachments={"x": float("nan")}), "attachments"),
    ],
)
async def test_bad_drafts_are_refused_naming_the_field(system: System, draft: TaskDraft, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        await system.services.tasks.create(draft)
    assert refused.value.field == field


async def test_id_filters_are_text_not_patterns(system: System) -> None:
    await system.services.tasks.create(TaskDraft(class_name=CLASS, id="cam.1"))
    await system.services.tasks.create(TaskDraft(class_name=CLASS, id="camX1"))
    page = await system.services.tasks.list(TaskQuery(id_contains="cam.1"))
    assert [t.id for t in page.items] == ["cam.1"]


async def test_the_summary_counts_tasks_by_status_and_nodes_by_health(system: System) -> None:
    await system.add_node("n1")
    await system.services.tasks.create(TaskDraft(class_name=CLASS))
    await system.services.tasks.create(TaskDraft(class_name="Unplaceable"))
    await system.cycle()
    summary = await system.services.queries.summary()
    assert (summary.total_nodes, summary.online_nodes, summary.total_tasks) == (1, 1, 2)
    assert summary.by_status[S.RUNNING] == 1
    assert summary.by_status[S.CREATED] == 1


async def test_upstream_set_status_maps_to_cancel_and_retry(system: System) -> None:
    task = await system.services.tasks.create(TaskDraft(class_name=CLASS))
    assert (await system.services.tasks.set_status(task.id, S.CANCELLED)).lifecycle_status is S.CANCELLED
    assert (await system.services.tasks.set_status(task.id, S.CREATED)).lifecycle_status is S.CREATED
    with pytest.raises(ValidationError, match="Created or Cancelled"):
        await system.services.tasks.set_status(task.id, S.RUNNING)


def test_settings_for_tests_are_valid() -> None:
    assert settings_for_tests().heartbeat.dead_after_ms == 15_000


async def test_a_queue_longer_than_a_page_is_assigned_page_after_page() -> None:
    system = await build_system(settings_for_tests(dispatch={"batch_size": 2}))
    try:
        await system.add_node("n1")
        for i in range(5):
            await system.services.tasks.create(TaskDraft(id=f"t{i}", class_name=CLASS))
        report = await asyncio.wait_for(system.services.dispatcher.dispatch_once(), timeout=10)
        assert report.assigned == 5
        for i in range(5):
            assert await status_of(system, f"t{i}") is S.ASSIGNING
    finally:
        await system.close()
