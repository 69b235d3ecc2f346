"""Acting on what upstream's clients ask in upstream's form (docs/upstream.md): ``task.assign`` dispatches
the tasks now, ``task.cancel`` cancels them, ``task.update.attachment`` sends each task's stored attachments
(which upstream's clients write into the document first) to its worker, all through the same use cases as
the API's, so every rule, event and log line is the same. A request that cannot be met (no such task, a
change the lifecycle refuses, attachments the worker's model rejects) is logged and the next one read; one
that meets an unavailable backend or a concurrent change is tried again until it is met or cannot be, so it
is committed only once it was acted on."""

from __future__ import annotations

import asyncio
import itertools
import logging

from skalds.application.dispatching import Dispatcher
from skalds.application.tasks import TaskService
from skalds.domain.errors import (
    BackendUnavailableError,
    ConflictError,
    IllegalTransitionError,
    TaskNotFoundError,
    ValidationError,
)
from skalds.domain.ports import Subscription, UpstreamRequestSource
from skalds.domain.upstream_requests import UpstreamRequest, UpstreamRequestKind

log = logging.getLogger(__name__)


UNMET = (TaskNotFoundError, IllegalTransitionError, ValidationError)
RETRY_S = (0.1, 0.5, 1.0, 2.0, 5.0)  # then every 5 s


class UpstreamIntake:
    def __init__(self, tasks: TaskService, dispatcher: Dispatcher) -> None:
        self._tasks = tasks
        self._dispatcher = dispatcher

    async def handle(self, request: UpstreamRequest) -> None:
        ids = ", ".join(request.task_ids)
        log.info("upstream-form %s request for task %s", request.kind.value, ids)
        if request.kind is UpstreamRequestKind.ASSIGN:
            self._dispatcher.consider(request.task_ids)
            return
        for task_id in request.task_ids:
            try:
                await self._until_met(request.kind, task_id)
            except UNMET as error:
                log.info(
                    "upstream-form %s request for task %s not met: %s",
                    request.kind.value,
                    task_id,
                    error,
                    extra={"task_id": task_id, "reason": str(error)},
                )

    async def _until_met(self, kind: UpstreamRequestKind, task_id: str) -> None:
        for attempt in itertools.count():
            try:
                if kind is UpstreamRequestKind.CANCEL:
                    await self._tasks.cancel(task_id)
                else:  # the attachments as the client wrote them, unless they changed since we read them
                    stored = await self._tasks.get(task_id)
                    await self._tasks.update_attachments(
                        task_id, stored.attachments, expected_version=stored.version
                    )
                return
            except (BackendUnavailableError, ConflictError) as error:
                wait = RETRY_S[min(attempt, len(RETRY_S) - 1)]
                log.warning(
                    "upstream-form %s request for task %s: %s; trying again in %g s",
                    kind.value,
                    task_id,
                    error,
                    wait,
                    extra={"task_id": task_id, "reason": str(error)},
                )
                await asyncio.sleep(wait)

    async def run(self, source: UpstreamRequestSource, *, resubscribe_s: float = 1.0) -> None:
        """Handle requests until cancelled; a failed request is logged, a failed subscription replaced."""
        while True:
            subscription: Subscription[UpstreamRequest] | None = None
            try:
                subscription = source.upstream_requests()
                async for request in subscription:
                    try:
                        await self.handle(request)
                    except Exception:
                        log.exception("upstream-form request %s failed", request)
            except Exception:
                log.exception("the upstream intake's subscription failed; it subscribes again")
            finally:
                if subscription is not None:
                    await subscription.close()
            await asyncio.sleep(resubscribe_s)
