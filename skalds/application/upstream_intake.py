"""Acting on what upstream's clients ask in upstream's form (docs/upstream.md): ``task.assign`` dispatches
the tasks now, ``task.cancel`` cancels them, ``task.update.attachment`` sends each task's stored attachments
(which upstream's clients write into the document first) to its worker, all through the same use cases as
the API's, so every rule, event and log line is the same. A request that cannot be met (no such task, a
change the lifecycle refuses, attachments the worker's model rejects) is logged and the next one read."""

from __future__ import annotations

import asyncio
import logging

from skalds.application.dispatching import Dispatcher
from skalds.application.tasks import TaskService
from skalds.domain.errors import SkaldsError
from skalds.domain.ports import UpstreamRequestSource
from skalds.domain.upstream_requests import UpstreamRequest, UpstreamRequestKind

log = logging.getLogger(__name__)


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
                if request.kind is UpstreamRequestKind.CANCEL:
                    await self._tasks.cancel(task_id)
                else:
                    stored = await self._tasks.get(task_id)
                    await self._tasks.update_attachments(task_id, stored.attachments)
            except SkaldsError as error:
                log.info(
                    "upstream-form %s request for task %s not met: %s",
                    request.kind.value,
                    task_id,
                    error,
                    extra={"task_id": task_id, "reason": str(error)},
                )

    async def run(self, source: UpstreamRequestSource, *, resubscribe_s: float = 1.0) -> None:
        """Handle requests until cancelled; a failed request is logged, a failed subscription replaced."""
        while True:
            subscription = source.upstream_requests()
            try:
                async for request in subscription:
                    try:
                        await self.handle(request)
                    except Exception:
                        log.exception("upstream-form request %s failed", request)
            except Exception:
                log.exception("the upstream intake's subscription failed; it subscribes again")
            finally:
                await subscription.close()
            await asyncio.sleep(resubscribe_s)
