"""The HTTP calls the throughput bench makes: single creates from N concurrent clients (one thread and one
``httpx.Client`` each), batch creates over ``POST /api/tasks/batch`` when the API has it, purges, counts."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

WORKER = "bench.workers:NoopWorker"
WORKER_CLASS = "NoopWorker"
BATCH_PATH = "/api/tasks/batch"
TIMEOUT_S = 60.0  # bounds a hung request; not a performance claim


def create_body(task_id: str) -> dict[str, Any]:
    """The body of ``POST /api/tasks``, and of each item of a batch."""
    return {"className": WORKER_CLASS, "id": task_id, "attachments": {}}


@dataclass(slots=True)
class Timed:
    """``count`` calls in ``seconds`` (wall time, all clients together), each call's milliseconds, and the
    first few errors."""

    count: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    slowest: tuple[float, str] = (0.0, "")

    def rate(self, items: int | None = None) -> float:
        return (self.count if items is None else items) / self.seconds if self.seconds > 0 else 0.0

    def note(self, what: str) -> None:
        self.error_count += 1
        if len(self.errors) < 5:
            self.errors.append(what)

    def took(self, ms: float, what: str) -> None:
        self.latencies_ms.append(ms)
        if ms > self.slowest[0]:
            self.slowest = (ms, what)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)
        return {
            "count": self.count,
            "seconds": round(self.seconds, 3),
            "perSecond": round(self.rate(), 1),
            "p50Ms": round(statistics.median(ordered), 1) if ordered else None,
            "p99Ms": round(ordered[int(0.99 * (len(ordered) - 1))], 1) if ordered else None,
            "maxMs": round(self.slowest[0], 1),
            "slowest": self.slowest[1],
            "errors": self.error_count,
            "firstErrors": self.errors,
        }

    def latency_note(self) -> str:
        s = self.summary()
        text = f"p50 {s['p50Ms']} ms, p99 {s['p99Ms']} ms, max {s['maxMs']} ms"
        return text + (f"; {self.error_count} errors: {self.errors[0]}" if self.error_count else "")


Call = Callable[[httpx.Client, str], str | None]  # one item; returns an error text, or None when it worked


def concurrently(
    url: str, items: Sequence[str], clients: int, call: Call, stop: threading.Event | None = None
) -> Timed:
    """``call`` once per item from ``clients`` threads (items dealt round-robin), each with its own
    keep-alive connection opened before the clock starts; ``stop`` ends each client after its current
    call."""
    timed = Timed()
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)

    def client(share: Sequence[str]) -> None:
        with httpx.Client(base_url=url, timeout=TIMEOUT_S) as api:
            api.get("/api/system/health")  # connect now, not on the clock
            ready.wait()
            for item in share:
                if stop is not None and stop.is_set():
                    return
                started = time.perf_counter()
                try:
                    error = call(api, item)
                except httpx.HTTPError as failure:
                    error = f"{item}: {failure!r}"
                ms = (time.perf_counter() - started) * 1000
                with lock:
                    timed.count += 1
                    timed.took(ms, item)
                    if error:
                        timed.note(error)

    threads = [
        threading.Thread(target=client, args=(items[k::clients],), daemon=True) for k in range(clients)
    ]
    for thread in threads:
        thread.start()
    ready.wait(timeout=TIMEOUT_S)
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    timed.seconds = time.perf_counter() - started
    return timed


def create_one(api: httpx.Client, task_id: str) -> str | None:
    response = api.post("/api/tasks", json=create_body(task_id))
    return None if response.status_code == 201 else f"{task_id}: {response.status_code} {response.text[:200]}"


def purge_one(api: httpx.Client, task_id: str) -> str | None:
    response = api.delete(f"/api/tasks/{task_id}", params={"purge": "true"})
    return None if response.status_code == 200 else f"{task_id}: {response.status_code} {response.text[:200]}"


def single_creates(url: str, ids: Sequence[str], clients: int, stop: threading.Event | None = None) -> Timed:
    return concurrently(url, ids, clients, create_one, stop)


def purge(url: str, ids: Sequence[str], clients: int = 8) -> Timed:
    """Remove tasks from storage through the API (``DELETE /api/tasks/{id}?purge=true``)."""
    return concurrently(url, ids, clients, purge_one)


def returned_ids(body: Any) -> list[str]:
    """The ids a batch create answered, read loosely: ``{"data": {"ids": [...]}}``, ``{"ids": [...]}``,
    ``{"items": [{"id": ...}]}`` or a bare list of either."""
    found = body.get("data", body) if isinstance(body, dict) else body
    if isinstance(found, dict):
        for key in ("ids", "taskIds", "items", "tasks", "created"):
            if key in found:
                found = found[key]
                break
    if not isinstance(found, list):
        return []
    return [item if isinstance(item, str) else str(item.get("id")) for item in found if item]


def batch_creates(
    api: httpx.Client, ids: Sequence[str], per_request: int = 500, stop: threading.Event | None = None
) -> Timed | None:
    """``ids`` created ``per_request`` at a time over the batch endpoint; None when the API has none
    (404 or 405 on the first request). A request whose answer does not list its ids in order is an error."""
    timed = Timed()
    started = time.perf_counter()
    for offset in range(0, len(ids), per_request):
        if stop is not None and stop.is_set():
            break
        chunk = list(ids[offset : offset + per_request])
        sent = time.perf_counter()
        response = api.post(BATCH_PATH, json={"tasks": [create_body(task_id) for task_id in chunk]})
        timed.took((time.perf_counter() - sent) * 1000, f"items {offset}-{offset + len(chunk) - 1}")
        if response.status_code in {404, 405} and offset == 0:
            return None
        if response.status_code not in {200, 201}:
            timed.note(f"items {offset}+: {response.status_code} {response.text[:200]}")
            continue
        timed.count += len(chunk)
        answered = returned_ids(response.json())
        if answered != chunk:
            timed.note(f"items {offset}+: answered {len(answered)} ids, not the {len(chunk)} sent in order")
    timed.seconds = time.perf_counter() - started
    return timed


def has_batch_endpoint(api: httpx.Client) -> bool:
    """Whether ``POST /api/tasks/batch`` exists: an empty batch gets anything but 404/405."""
    return api.post(BATCH_PATH, json={"tasks": []}).status_code not in {404, 405}


def count(api: httpx.Client, status: str | None = None) -> int:
    """How many tasks the API has (with that ``lifecycleStatus``): the ``total`` of a one-item page."""
    params: dict[str, str | int] = {"pageSize": 1}
    if status:
        params["lifecycleStatus"] = status
    response = api.get("/api/tasks", params=params)
    response.raise_for_status()
    return int(response.json()["total"])
