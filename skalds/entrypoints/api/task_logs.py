"""``/api/tasks/{id}/logs``: a task's output, as a page or followed live (SSE).

Without ``since`` a read gives the last ``limit`` lines (the end of the output is what a reader wants
first); with it, the lines after that number, oldest first. ``next`` in the answer is the following read's
``since``. The stream sends every line as a ``task_log`` frame whose ``id`` is the line's number (so
``Last-Event-ID`` resumes exactly), goes on to the task's next attempt when there is one (a retry, a
re-queue), and sends ``task_log_end`` once the task has ended and its last lines are in.
It reads the store every ``POLL_S`` rather than listening on the bus: any controller process can serve it,
whichever one keeps the output.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import FromPath, QueryParameter
from litestar.types import ASGIApp, Receive, Scope, Send

from skalds.application.task_logs import TaskLogService, TaskOutput
from skalds.domain.task import Task
from skalds.domain.task_logs import LogLine
from skalds.entrypoints.api.events import EVENT_STREAM, RETRY_MS
from skalds.entrypoints.api.injection import Injected
from skalds.entrypoints.api.openapi import READ, error_responses
from skalds.entrypoints.api.replies import TaskLogLineJson, TaskLogsReply

POLL_S = 0.5
END_AFTER_QUIET_S = 2.0  # an ended task's last lines may reach the store a moment after its outcome
KEEP_ALIVE_S = 15.0  # a comment on a quiet stream, so neither the client nor a proxy takes it for dead
_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]

Attempt = Annotated[int | None, QueryParameter(ge=0, description="default: the task's current attempt")]
Since = Annotated[int | None, QueryParameter(ge=0, description="lines after this number; default: the end")]
Limit = Annotated[int, QueryParameter(ge=1, le=10_000)]
Level = Annotated[
    str | None, QueryParameter(description="the lowest level shown: DEBUG, INFO, WARNING, ERROR, CRITICAL")
]


def line_json(line: LogLine) -> TaskLogLineJson:
    return {
        "seq": line.seq,
        "at": line.at,
        "level": line.level,
        "stream": line.stream.value,
        "logger": line.logger,
        "message": line.message,
    }


def _reply(output: TaskOutput) -> TaskLogsReply:
    return {
        "taskId": output.task.id,
        "attempt": output.attempt,
        "attempts": list(output.attempts),
        "lifecycleStatus": output.task.lifecycle_status,
        "lines": [line_json(line) for line in output.page.lines],
        "next": output.page.cursor,
        "lastSeq": output.page.last_seq,
    }


def _frame(kind: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


@dataclass(slots=True)
class _LogStream:
    """Writes one attempt's lines as they are stored, until the task has ended or the client leaves."""

    logs: TaskLogService
    task_id: str
    attempt: int
    after: int
    level: str | None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()
        watching = asyncio.create_task(self._watch(receive, gone))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            await send(
                {"type": "http.response.body", "body": f"retry: {RETRY_MS}\n\n".encode(), "more_body": True}
            )
            await self._follow(send, gone)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watching.cancel()

    async def _follow(self, send: Send, gone: asyncio.Event) -> None:
        """Lines of the attempt being followed; once it is drained and the task has a later attempt, that
        one from its first line; the end once the task's latest attempt ended and stayed quiet."""
        loop = asyncio.get_running_loop()
        quiet_since: float | None = None
        sent_at = loop.time()
        while not gone.is_set():
            output = await self.logs.read(
                self.task_id, attempt=self.attempt, after=self.after, limit=1_000, level=self.level
            )
            self.after = output.page.cursor
            if output.page.lines:
                body = b"".join(self._line_frame(line) for line in output.page.lines)
                await send({"type": "http.response.body", "body": body, "more_body": True})
                quiet_since, sent_at = None, loop.time()
                continue  # there may be more right away
            task = output.task
            if task.attempt > self.attempt:  # a retry, or a re-queue: its output follows this one's
                self.attempt, self.after, quiet_since = task.attempt, 0, None
                continue
            if task.is_terminal:
                quiet_since = loop.time() if quiet_since is None else quiet_since
                if loop.time() - quiet_since >= END_AFTER_QUIET_S:
                    await send(
                        {"type": "http.response.body", "body": self._end_frame(task), "more_body": True}
                    )
                    return
            if loop.time() - sent_at >= KEEP_ALIVE_S:
                await send({"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True})
                sent_at = loop.time()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await gone.wait()

    def _line_frame(self, line: LogLine) -> bytes:
        data = {"type": "task_log", "taskId": self.task_id, "attempt": self.attempt, **line_json(line)}
        return _frame("task_log", data, line.seq)

    def _end_frame(self, task: Task) -> bytes:
        data = {
            "type": "task_log_end",
            "taskId": self.task_id,
            "attempt": self.attempt,
            "lifecycleStatus": task.lifecycle_status.value,
        }
        return _frame("task_log_end", data)

    @staticmethod
    async def _watch(receive: Receive, gone: asyncio.Event) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()


def _resume_after(request: Request[Any, Any, Any], since: int | None) -> int:
    raw = request.headers.get("last-event-id")
    with contextlib.suppress(TypeError, ValueError):
        if raw is not None and int(raw) >= 0:
            return int(raw)
    return since or 0


class TaskLogController(Controller):
    path = "/api/tasks/{task_id:str}/logs"

    @get("/", responses=error_responses(*READ, 404, 422))
    async def logs(  # noqa: PLR0917 - one parameter per query name
        self,
        services: Injected,
        task_id: FromPath[str],
        attempt: Attempt = None,
        since: Since = None,
        limit: Limit = 1_000,
        level: Level = None,
    ) -> TaskLogsReply:
        """The last ``limit`` lines of an attempt, or with ``since`` the lines after that number."""
        output = await services.task_logs.read(
            task_id, attempt=attempt, after=since or 0, limit=limit, level=level, tail=since is None
        )
        return _reply(output)

    @get(
        "/stream",
        media_type=EVENT_STREAM,
        response_description="task_log frames as lines are stored, then task_log_end",
        responses=error_responses(*READ, 404, 422),
    )
    async def follow(  # noqa: PLR0917 - one parameter per query name
        self,
        request: Request[Any, Any, Any],
        services: Injected,
        task_id: FromPath[str],
        attempt: Attempt = None,
        since: Since = None,
        level: Level = None,
    ) -> ASGIApp:
        """From ``since`` (or ``Last-Event-ID``; default: the start of the attempt), then live, across the
        task's later attempts."""
        first = await services.task_logs.read(task_id, attempt=attempt, limit=1, level=level)  # 404 / 422 now
        return _LogStream(
            services.task_logs, first.task.id, first.attempt, _resume_after(request, since), level
        )
