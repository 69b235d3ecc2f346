"""``/api/tasks/{id}/timeline`` and ``/api/system/dashboard/history``: what the history keeper kept, as the
dashboard reads it."""

from __future__ import annotations

from skalds.domain.task import TaskStatus
from skalds.domain.task_history import MINUTE_MS, minute_of
from tests.contracts.event_bus import drain
from tests.unit.api.conftest import Api
from tests.unit.application.harness import CLASS


async def kept(api: Api, events: object) -> None:
    keeper = api.services.history_keeper
    for event in await drain(events):  # type: ignore[arg-type]
        keeper.observe(event)
    await keeper.flush()


async def test_a_tasks_timeline_lists_its_changes_oldest_first(api: Api) -> None:
    events = api.services.subscriber.events()
    await api.client.post("/api/tasks", json={"className": CLASS, "id": "t1"})
    await api.client.post("/api/tasks/t1/cancel")
    await kept(api, events)
    reply = (await api.client.get("/api/tasks/t1/timeline")).json()
    assert reply["taskId"] == "t1" and reply["lifecycleStatus"] == "Cancelled" and reply["attempt"] == 0
    assert [(c["change"], c["lifecycleStatus"]) for c in reply["changes"]] == [
        ("TaskCreated", "Created"),
        ("TaskCancelled", "Cancelled"),
    ]
    assert set(reply["changes"][0]) == {
        "at",
        "version",
        "change",
        "lifecycleStatus",
        "attempt",
        "executor",
        "detail",
    }
    assert reply["progress"] == []


async def test_the_timeline_of_an_unknown_task_is_a_404_naming_it(api: Api) -> None:
    reply = await api.client.get("/api/tasks/nope/timeline")
    assert reply.status_code == 404 and "nope" in reply.text


async def test_the_dashboard_history_gives_each_of_the_last_minutes(api: Api) -> None:
    events = api.services.subscriber.events()
    await api.client.post("/api/tasks", json={"className": CLASS, "id": "t1"})
    await kept(api, events)
    await api.services.history_keeper.sample()
    reply = (await api.client.get("/api/system/dashboard/history", params={"minutes": 3})).json()
    assert reply["minuteMs"] == MINUTE_MS
    now = minute_of(api.system.clock.now_ms())
    assert [m["at"] for m in reply["items"]] == [now - 2 * MINUTE_MS, now - MINUTE_MS, now]
    last = reply["items"][-1]
    assert last["created"] == 1 and last["byStatus"][TaskStatus.CREATED.value] == 1
    assert reply["items"][0]["byStatus"] is None and reply["items"][0]["created"] == 0


async def test_more_minutes_than_are_kept_is_a_422_naming_the_parameter(api: Api) -> None:
    for minutes in ("0", "100000"):
        reply = await api.client.get("/api/system/dashboard/history", params={"minutes": minutes})
        assert reply.status_code in (400, 422) and "minutes" in reply.text
