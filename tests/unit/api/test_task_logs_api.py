"""``/api/tasks/{id}/logs``: a task's output as pages and as a followed stream (lines stored directly, as
the log keeper stores what nodes ship)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from skalds.domain.task import TaskStatus
from tests.contracts.task_logs import line
from tests.unit.api.conftest import Api, Served
from tests.unit.application.harness import CLASS


async def stored(api: Api | Served, task_id: str, count: int, *, attempt: int = 1, start: int = 1) -> None:
    levels = ["INFO", "WARNING", "ERROR", "DEBUG"]
    await api.services.task_log_store.append(
        [
            line(seq, task=task_id, attempt=attempt, level=levels[seq % 4])
            for seq in range(start, start + count)
        ]
    )


async def test_a_read_without_since_gives_the_last_lines_and_where_to_go_on(api: Api) -> None:
    await api.client.post("/api/tasks", json={"className": CLASS, "id": "t1"})
    await stored(api, "t1", 30, attempt=0)
    reply = (await api.client.get("/api/tasks/t1/logs", params={"limit": 5})).json()
    assert [x["seq"] for x in reply["lines"]] == [26, 27, 28, 29, 30]
    assert reply["next"] == 30 and reply["lastSeq"] == 30 and reply["attempt"] == 0
    assert reply["attempts"] == [0] and reply["lifecycleStatus"] == "Created"
    assert set(reply["lines"][0]) == {"seq", "at", "level", "stream", "logger", "message"}
    later = (await api.client.get("/api/tasks/t1/logs", params={"since": 10, "limit": 3})).json()
    assert [x["seq"] for x in later["lines"]] == [11, 12, 13] and later["next"] == 13


async def test_attempt_and_level_choose_what_is_read(api: Api) -> None:
    await api.client.post("/api/tasks", json={"className": CLASS, "id": "t1"})
    await stored(api, "t1", 8, attempt=1)
    await stored(api, "t1", 2, attempt=2)
    reply = (await api.client.get("/api/tasks/t1/logs", params={"attempt": 1, "level": "warning"})).json()
    assert {x["level"] for x in reply["lines"]} == {"WARNING", "ERROR"}
    assert reply["attempts"] == [1, 2]


async def test_bad_reads_are_refused_naming_the_parameter(api: Api) -> None:
    await api.client.post("/api/tasks", json={"className": CLASS, "id": "t1"})
    missing = await api.client.get("/api/tasks/nope/logs")
    assert missing.status_code == 404
    for params, name in (({"level": "loud"}, "level"), ({"limit": 0}, "limit"), ({"since": -1}, "since")):
        answer = await api.client.get("/api/tasks/t1/logs", params=params)
        assert answer.status_code in (400, 422) and name in answer.text, (params, answer.text)
    assert (await api.client.get("/api/tasks/nope/logs/stream")).status_code == 404


async def data_lines(lines: Any, until: str, within: float = 10.0) -> list[str]:
    got: list[str] = []

    async def collect() -> None:
        async for row in lines:
            if row.startswith(("id:", "event:")):
                got.append(row)
                if row == until:
                    return

    await asyncio.wait_for(collect(), within)
    return got


async def test_a_follower_gets_lines_as_they_are_stored_then_the_end(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base_url) as http:
        await http.post("/api/tasks", json={"className": CLASS, "id": "t1"})
        await stored(served, "t1", 2, attempt=0)
        async with http.stream("GET", "/api/tasks/t1/logs/stream", params={"since": 1}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            rows = response.aiter_lines()
            first = await data_lines(rows, "event: task_log")
            assert first == ["id: 2", "event: task_log"]
            await stored(served, "t1", 1, attempt=0, start=3)
            assert await data_lines(rows, "event: task_log") == ["id: 3", "event: task_log"]
            await http.post("/api/tasks/t1/cancel")  # an unassigned task is Cancelled at once
            task = (await http.get("/api/tasks/t1")).json()
            assert task["lifecycleStatus"] == TaskStatus.CANCELLED.value
            assert await data_lines(rows, "event: task_log_end") == ["event: task_log_end"]


async def test_a_follower_resumes_after_its_last_event_id(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base_url) as http:
        await http.post("/api/tasks", json={"className": CLASS, "id": "t1"})
        await stored(served, "t1", 5, attempt=0)
        headers = {"Last-Event-ID": "3"}
        async with http.stream("GET", "/api/tasks/t1/logs/stream", headers=headers) as response:
            assert (await data_lines(response.aiter_lines(), "event: task_log"))[0] == "id: 4"
