"""A small synchronous client of the Skalds HTTP API (docs/api.md), for the ``skalds task`` / ``nodes``
commands: one method per endpoint they use, JSON in and out, and two errors a command can report in a line —
the API refused (its own ``message``) or the API could not be reached at all."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from skalds.domain.errors import SkaldsError
from skalds.entrypoints.client.sse import Frame, read_frames

API_KEY_HEADER = "X-API-Key"
TIMEOUT_S = 10.0
STREAM_READ_TIMEOUT_S = 60.0
"""The API sends a keep-alive comment after 15 s of silence; a minute of nothing means the stream is dead."""
BATCH_READ_TIMEOUT_S = 120.0


class ApiError(SkaldsError):
    """The API answered with an error: its HTTP status and the ``message`` of its JSON body."""

    def __init__(self, status: int, message: str, body: Any = None):
        self.status = status
        self.message = message
        self.body = body
        super().__init__(message)


class ApiUnreachableError(SkaldsError):
    """No answer from the API at ``url`` (refused, unknown host, timed out, cut off)."""

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach the Skalds API at {url}: {reason}")


def _reason(error: httpx.TransportError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "no answer in time"
    return str(error) or type(error).__name__


def _error_from(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
        message = f"HTTP {response.status_code} {response.reason_phrase}" + (f": {text}" if text else "")
    return ApiError(response.status_code, message, body)


class ApiClient:
    """Use as a context manager; every method raises ``ApiError`` or ``ApiUnreachableError``."""

    def __init__(self, base_url: str, api_key: str | None = None, *, timeout_s: float = TIMEOUT_S):
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        headers = {API_KEY_HEADER: api_key} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **options: Any) -> Any:
        try:
            response = self._http.request(method, path, **options)
        except httpx.TransportError as error:
            raise ApiUnreachableError(self.base_url, _reason(error)) from error
        if response.is_error:
            raise _error_from(response)
        try:
            return response.json()
        except ValueError:
            message = f"the answer to {method} {path} is not JSON: is {self.base_url} a Skalds API?"
            raise ApiError(response.status_code, message) from None

    def create_task(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/api/tasks", json=dict(body)))

    def create_many(self, bodies: Sequence[Mapping[str, Any]]) -> list[str]:
        """``POST /api/tasks/batch``: all or none; the ids in the order of ``bodies``. A batch of 1,000 on a
        busy database takes longer than one create, so the answer may take ``BATCH_READ_TIMEOUT_S``."""
        timeout = httpx.Timeout(TIMEOUT_S, read=BATCH_READ_TIMEOUT_S)
        body = {"tasks": [dict(item) for item in bodies]}
        answer = self._call("POST", "/api/tasks/batch", json=body, timeout=timeout)
        ids = answer.get("data", {}).get("ids") if isinstance(answer, dict) else None
        if not isinstance(ids, list) or len(ids) != len(bodies):
            raise ApiError(201, f"the answer to POST /api/tasks/batch has no ids for {len(bodies)} tasks")
        return [str(task_id) for task_id in ids]

    def list_tasks(self, params: Mapping[str, str | int]) -> dict[str, Any]:
        return dict(self._call("GET", "/api/tasks", params=dict(params)))

    def get_task(self, task_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/tasks/{quote(task_id, safe='')}"))

    def steer(self, task_id: str, command: str) -> dict[str, Any]:
        """``command`` is one of cancel, pause, resume, retry; the answer is the task."""
        return dict(self._call("POST", f"/api/tasks/{quote(task_id, safe='')}/{command}"))

    def update_attachments(
        self, task_id: str, attachments: Mapping[str, Any], expected_version: int | None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"attachments": dict(attachments)}
        if expected_version is not None:
            body["expectedVersion"] = expected_version
        return dict(self._call("PUT", f"/api/tasks/{quote(task_id, safe='')}/attachments", json=body))

    def nodes(self) -> dict[str, Any]:
        return dict(self._call("GET", "/api/skalds"))

    def task_logs(self, task_id: str, params: Mapping[str, str | int]) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/tasks/{quote(task_id, safe='')}/logs", params=params))

    def task_log_stream(self, task_id: str, params: Mapping[str, str | int]) -> Iterator[Frame]:
        """The task's output as it is stored (``task_log`` frames), then ``task_log_end``."""
        yield from self._stream(f"/api/tasks/{quote(task_id, safe='')}/logs/stream", dict(params), None)

    def task_events(self, task_id: str, last_event_id: str | None = None) -> Iterator[Frame]:
        """The task's live frames (SSE), starting with the ``connection`` greeting. Ends when the API
        closes the stream; ``last_event_id`` asks it to replay what a previous stream missed."""
        yield from self._stream("/api/events/tasks", {"task_id": task_id}, last_event_id)

    def _stream(self, path: str, params: dict[str, Any], last_event_id: str | None) -> Iterator[Frame]:
        if self._api_key:
            params["apiKey"] = self._api_key
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        timeout = httpx.Timeout(TIMEOUT_S, read=STREAM_READ_TIMEOUT_S)
        try:
            with self._http.stream("GET", path, params=params, headers=headers, timeout=timeout) as response:
                if response.is_error:
                    response.read()
                    raise _error_from(response)
                yield from read_frames(response.iter_lines())
        except httpx.TransportError as error:
            raise ApiUnreachableError(self.base_url, _reason(error)) from error

    def alerts(self, *, active: bool, limit: int = 100) -> dict[str, Any]:
        return dict(self._call("GET", "/api/alerts", params={"active": str(active).lower(), "limit": limit}))

    def acknowledge(self, alert_id: str, by: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/api/alerts/{quote(alert_id, safe='')}/ack", json={"by": by}))

    def silences(self, *, active: bool) -> dict[str, Any]:
        return dict(self._call("GET", "/api/silences", params={"active": str(active).lower()}))

    def silence(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/api/silences", json=dict(body)))

    def expire_silence(self, silence_id: str, by: str) -> dict[str, Any]:
        path = f"/api/silences/{quote(silence_id, safe='')}"
        return dict(self._call("DELETE", path, params={"by": by}))
