"""``/api/tasks``: upstream's paths and envelopes, plus create, cancel, pause, resume and retry."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, delete, get, patch, post, put
from litestar.params import FromPath, FromQuery, QueryParameter

from skalds.bootstrap import Services
from skalds.domain.errors import ValidationError
from skalds.domain.ports import TaskQuery
from skalds.domain.task import LIVE, Task, TaskStatus
from skalds.entrypoints.api.batch import (
    BATCH_DESCRIPTION,
    BatchBody,
    BatchCreatedResponse,
    batch_created,
    batch_drafts,
)
from skalds.entrypoints.api.injection import Injected
from skalds.entrypoints.api.openapi import READ, WRITE, error_responses
from skalds.entrypoints.api.replies import (
    AttachmentsData,
    AttachmentsReply,
    DeletedData,
    DeletedReply,
    StatusReply,
    TaskHeartbeatReply,
)
from skalds.entrypoints.api.schemas import (
    AttachmentsBody,
    CreateBody,
    CreateTaskRequest,
    StatusBody,
    UpdateAttachmentsRequest,
    UpdateStatusRequest,
    heartbeat_json,
)
from skalds.entrypoints.api.task_responses import TaskPageResponse, TaskResponse, task_response


def _status(value: str | None) -> frozenset[TaskStatus] | None:
    if not value:
        return None
    for status in TaskStatus:
        if status.value.lower() == value.lower():
            return frozenset({status})
    raise ValidationError(
        "lifecycleStatus", f"must be one of {', '.join(s.value for s in TaskStatus)}; got {value!r}"
    )


async def _one(services: Services, task: Task) -> TaskResponse:
    report = await services.queries.latest_heartbeat(task.id)
    return task_response(task, report, services.dispatcher.pending_reason(task.id))


STATUS_NAMES = ["", *(s.value for s in TaskStatus)]
"""The filter's documented values ("" is no filter); the lookup also ignores case."""
MAX_PAGE = 1_000_000_000  # page x pageSize stays a 64-bit offset for every backend


def _attachments_reply(task: Task) -> AttachmentsReply:
    payload: AttachmentsData = {
        "taskId": task.id,
        "attachments": dict(task.attachments),
        "attachmentsVersion": task.attachments_version,
    }
    return {"success": True, "message": "Task attachments updated successfully", "data": payload}


ONE = (*READ, 404)
"""A read of one task."""
CHANGE = (*WRITE, 404, 409)
"""A change to one task: it may not exist, or its status or version may not allow the change."""


class TaskController(Controller):
    path = "/api/tasks"

    @get(["/", ""], responses=error_responses(*READ, 422))
    async def list_tasks(  # noqa: PLR0917 - one parameter per upstream query name
        self,
        services: Injected,
        page: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 1,
        page_size: Annotated[int, QueryParameter(name="pageSize", ge=1, le=100)] = 20,
        lifecycle_status: Annotated[
            str | None, QueryParameter(name="lifecycleStatus", schema_extra={"enum": STATUS_NAMES})
        ] = None,
        class_name: Annotated[str | None, QueryParameter(name="className")] = None,
        executor: FromQuery[str | None] = None,
        id_contains: Annotated[str | None, QueryParameter(name="id", max_length=200)] = None,
    ) -> TaskPageResponse:
        """Newest first. ``id`` matches as plain text inside the id; ``lifecycleStatus`` ignores case."""
        query = TaskQuery(
            statuses=_status(lifecycle_status),
            class_name=class_name or None,
            executor=executor or None,
            id_contains=id_contains or None,
            offset=(page - 1) * page_size,
            limit=page_size,
        )
        found = await services.tasks.list(query)
        reports = await services.live_state.latest_heartbeats(
            [t.id for t in found.items if t.lifecycle_status in LIVE]
        )
        pending = services.dispatcher.pending_reason
        items = [task_response(t, reports.get(t.id), pending(t.id)) for t in found.items]
        return TaskPageResponse(items=items, total=found.total, page=page, page_size=page_size)

    @post(["/", ""], status_code=201, responses=error_responses(*WRITE, 409))
    async def create_task(self, services: Injected, data: CreateBody) -> TaskResponse:
        task = await services.tasks.create(CreateTaskRequest.model_validate(data).draft())
        return task_response(task)

    @get("/classnames", responses=error_responses(*READ))
    async def class_names(self, services: Injected) -> list[str]:
        return list(await services.tasks.class_names())

    @get("/{task_id:str}", responses=error_responses(*ONE))
    async def get_task(self, services: Injected, task_id: FromPath[str]) -> TaskResponse:
        return await _one(services, await services.tasks.get(task_id))

    @get("/{task_id:str}/heartbeat", responses=error_responses(*ONE, 422))
    async def heartbeat(
        self,
        services: Injected,
        task_id: FromPath[str],
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> TaskHeartbeatReply:
        task = await services.tasks.get(task_id)
        history = await services.queries.heartbeat_history(task_id, limit)
        latest = history[-1] if history else None
        now = services.clock.now_ms()
        return {
            "taskId": task_id,
            "heartbeat": heartbeat_json(latest)["heartbeat"] if latest else 0,
            "status": task.lifecycle_status,
            "isAlive": latest is not None
            and now - latest.received_at <= services.settings.heartbeat.suspect_after_ms,
            "isAssigning": task.lifecycle_status is TaskStatus.ASSIGNING,
            "error": latest.error if latest else None,
            "exception": task.last_error if task.lifecycle_status is TaskStatus.FAILED else None,
            "lastUpdate": latest.received_at if latest else None,
            "progress": latest.progress if latest else None,
            "heartbeatHistory": [heartbeat_json(r) for r in history],
        }

    @put("/{task_id:str}/attachments", responses=error_responses(*CHANGE))
    async def update_attachments(
        self, services: Injected, task_id: FromPath[str], data: AttachmentsBody
    ) -> AttachmentsReply:
        request = UpdateAttachmentsRequest.model_validate(data)
        task = await services.tasks.update_attachments(
            task_id, request.attachments, expected_version=request.expected_version
        )
        return _attachments_reply(task)

    @patch("/{task_id:str}/attachments", responses=error_responses(*CHANGE))
    async def patch_attachments(
        self, services: Injected, task_id: FromPath[str], data: AttachmentsBody
    ) -> AttachmentsReply:
        """Only the keys given change; the rest keep their stored values (PUT replaces the whole)."""
        request = UpdateAttachmentsRequest.model_validate(data)
        task = await services.tasks.patch_attachments(
            task_id, request.attachments, expected_version=request.expected_version
        )
        return _attachments_reply(task)

    @put("/{task_id:str}/status", responses=error_responses(*CHANGE))
    async def update_status(
        self, services: Injected, task_id: FromPath[str], data: StatusBody
    ) -> StatusReply:
        request = UpdateStatusRequest.model_validate(data)
        task = await services.tasks.set_status(task_id, request.lifecycle_status)
        return {
            "success": True,
            "message": f"Task status updated to {request.lifecycle_status.value}",
            "data": {
                "taskId": task.id,
                # upstream's clients (its dashboard's modal) show ``status`` as the status just set; what the
                # task is observed doing meanwhile (a running task stays Running until its worker stopped)
                # is ours, in ``lifecycleStatus`` and ``desiredState``
                "status": request.lifecycle_status,
                "lifecycleStatus": task.lifecycle_status,
                "desiredState": task.desired_state,
            },
        }

    @delete("/{task_id:str}", status_code=200, responses=error_responses(*CHANGE))
    async def delete_task(
        self, services: Injected, task_id: FromPath[str], purge: FromQuery[bool] = False
    ) -> DeletedReply:
        """Upstream's soft delete: cancel. With ``purge=true``, remove a task no worker owns from storage."""
        if purge:
            await services.tasks.delete(task_id)
            return {"success": True, "message": "Task deleted", "data": {"taskId": task_id}}
        task = await services.tasks.cancel(task_id)
        data: DeletedData = {"taskId": task.id, "status": task.lifecycle_status}
        return {"success": True, "message": "Task cancelled successfully", "data": data}

    @post("/{task_id:str}/cancel", status_code=200, responses=error_responses(*CHANGE))
    async def cancel(self, services: Injected, task_id: FromPath[str]) -> TaskResponse:
        return await _one(services, await services.tasks.cancel(task_id))

    @post("/{task_id:str}/pause", status_code=200, responses=error_responses(*CHANGE))
    async def pause(self, services: Injected, task_id: FromPath[str]) -> TaskResponse:
        return await _one(services, await services.tasks.pause(task_id))

    @post("/{task_id:str}/resume", status_code=200, responses=error_responses(*CHANGE))
    async def resume(self, services: Injected, task_id: FromPath[str]) -> TaskResponse:
        return await _one(services, await services.tasks.resume(task_id))

    @post("/{task_id:str}/retry", status_code=200, responses=error_responses(*CHANGE))
    async def retry(self, services: Injected, task_id: FromPath[str]) -> TaskResponse:
        return await _one(services, await services.tasks.retry(task_id))


@post(
    "/api/tasks/batch",
    status_code=201,
    summary="Create many tasks, all or none",
    description=BATCH_DESCRIPTION,
    responses=error_responses(*WRITE, 409),
)
async def create_tasks(services: Injected, data: BatchBody) -> BatchCreatedResponse:
    """The request, the answer and every refusal are ``BATCH_DESCRIPTION`` (OpenAPI shows it). Outside
    TaskController so the app can give it a body limit of its own (limits.batch_body_bytes)."""
    drafts = batch_drafts(data, services.settings.controller.max_batch_tasks)
    return batch_created(await services.tasks.create_many(drafts))
