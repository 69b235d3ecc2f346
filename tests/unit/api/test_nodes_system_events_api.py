"""/api/skalds, /api/system, /api/alerts and the SSE streams, against the dashboard's contract (§15)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from skalds.domain import events as ev
from skalds.domain.nodes import NodeMode
from tests.unit.api.conftest import Api, Served
from tests.unit.application.harness import CLASS

SKALD_FIELDS = {
    "id",
    "type",
    "status",
    "lastHeartbeat",
    "supportedTasks",
    "currentTasks",
    "heartbeat",
    "taskCount",
}
SUMMARY_FIELDS = {
    "totalSkalds", "onlineSkalds", "totalTasks", "runningTasks", "finishedTasks", "failedTasks",
    "assigningTasks", "cancelledTasks", "nodeSkalds", "edgeSkalds",
}  # fmt: skip


async def test_skalds_are_listed_in_upstreams_shape(api: Api) -> None:
    await api.system.add_node("n1")
    await api.client.post("/api/tasks", json={"className": CLASS, "id": "t1"})
    await api.system.cycle()
    for path in ("/api/skalds", "/api/skalds/"):
        listing = (await api.client.get(path)).json()
        assert listing["total"] == 1
        [skald] = listing["items"]
        assert skald.keys() >= SKALD_FIELDS
        assert (skald["type"], skald["status"], skald["supportedTasks"], skald["currentTasks"]) == (
            "node", "online", [CLASS], ["t1"],
        )  # fmt: skip
        assert isinstance(skald["lastHeartbeat"], str)
    assert (await api.client.get("/api/skalds", params={"status": "offline"})).json()["total"] == 0
    assert (await api.client.get("/api/skalds/n1")).json()["id"] == "n1"
    assert (await api.client.get("/api/skalds/n1/tasks")).json()["tasks"][0]["id"] == "t1"
    assert (await api.client.get("/api/skalds/nope")).status_code == 404


async def test_the_dashboard_summary_has_upstreams_ten_counts(api: Api) -> None:
    await api.client.post("/api/tasks", json={"className": CLASS})
    summary = (await api.client.get("/api/system/dashboard/summary")).json()
    assert summary.keys() >= SUMMARY_FIELDS
    assert summary["totalTasks"] == 1


async def test_health_status_metrics_and_alerts_answer(api: Api) -> None:
    health = await api.client.get("/api/system/health")
    assert health.status_code == 200
    assert health.json()["services"] == {
        "repository": "healthy",
        "liveState": "healthy",
        "eventBus": "healthy",
    }
    status = (await api.client.get("/api/system/status")).json()
    assert {c["name"] for c in status["components"]} == {"Dispatcher", "Monitor"}
    assert not any(c["running"] for c in status["components"])  # this app was built without its loops
    assert "tasks" in (await api.client.get("/api/system/metrics")).json()
    await api.services.alerts.observe(ev.NodeWentOffline(at=1, node_id="n9", silent_for_ms=40_000))
    alerts = (await api.client.get("/api/alerts", params={"active": "true"})).json()
    assert [(a["rule"], a["subject"], a["severity"]) for a in alerts["items"]] == [
        ("node_offline", "n9", "critical")
    ]
    assert (await api.client.get("/schema/openapi.json")).status_code == 200


async def read_frames(
    lines: AsyncIterator[str],
    wanted: int,
    within: float = 5.0,
    until: Callable[[dict[str, Any]], bool] | None = None,
) -> list[dict[str, Any]]:
    """The next ``wanted`` data frames from a stream's lines (comments and ids skipped), or fewer when a
    frame matches ``until``."""
    frames: list[dict[str, Any]] = []

    async def collect() -> None:
        async for line in lines:
            if line.startswith("data:"):
                frames.append(json.loads(line.removeprefix("data:").strip()))
                if len(frames) >= wanted or (until is not None and until(frames[-1])):
                    return

    await asyncio.wait_for(collect(), within)
    return frames


async def test_a_status_change_reaches_a_connected_client_without_polling(served: Served) -> None:
    await served.system.add_node("n1")
    async with (
        httpx.AsyncClient(base_url=served.base_url) as http,
        http.stream("GET", "/api/events/tasks") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        [hello] = await read_frames(lines, 1)
        assert hello == {"type": "connection", "message": "Connected to Skalds Task events"}
        await http.post("/api/tasks", json={"className": CLASS, "id": "t1"})
        await served.system.cycle()

        def running(frame: dict[str, Any]) -> bool:
            return frame["type"] == "task_status" and frame["data"]["lifecycleStatus"] == "Running"

        frames = await read_frames(lines, 12, until=running)
    statuses = [f["data"]["lifecycleStatus"] for f in frames if f["type"] == "task_status"]
    assert statuses == ["Created", "Assigning", "Running"]
    assert all(f["taskId"] == "t1" and isinstance(f["timestamp"], int) for f in frames)


async def test_skald_frames_carry_status_and_tasks_and_filters_apply(served: Served) -> None:
    async with (
        httpx.AsyncClient(base_url=served.base_url) as http,
        http.stream("GET", "/api/events/skalds", params={"skald_id": "n2"}) as response,
    ):
        lines = response.aiter_lines()
        await read_frames(lines, 1)
        await served.system.add_node("n1")
        await served.system.add_node("n2")
        await served.system.cycle()
        frames = await read_frames(lines, 2)
    assert {f["skaldId"] for f in frames} == {"n2"}
    kinds = {f["type"]: f["data"] for f in frames}
    assert kinds["skald_status"]["status"] == "online"
    assert kinds["skald_heartbeat"]["tasks"] == []


async def test_a_reconnecting_client_resumes_after_its_last_event_id(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base_url) as http:
        await http.post("/api/tasks", json={"className": CLASS, "id": "t1"})
        await http.post("/api/tasks/t1/cancel")
        await asyncio.sleep(0.05)
        async with http.stream("GET", "/api/events/tasks", headers={"Last-Event-ID": "1"}) as response:
            frames = await read_frames(response.aiter_lines(), 4)
        status = (await http.get("/api/events/status")).json()
    assert [f["data"]["lifecycleStatus"] for f in frames[1:]] == ["Created", "Cancelled", "Cancelled"]
    assert status["status"] == "active" and status["lastEventId"] >= 2


async def test_prometheus_metrics_count_tasks_nodes_dispatch_and_alerts(api: Api) -> None:
    await api.system.add_node("n1")
    await api.client.post("/api/tasks", json={"className": CLASS, "id": "t1"})
    await api.system.cycle()
    await api.services.alerts.observe(ev.NodeWentOffline(at=1, node_id="n9", silent_for_ms=1))
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'skalds_tasks{status="Running"} 1.0' in text
    assert 'skalds_nodes{health="online"} 1.0' in text
    assert "skalds_dispatch_assigned_total 1.0" in text
    assert 'skalds_dispatch_queue_wait_ms_bucket{le="+Inf"} 1.0' in text
    assert "skalds_heartbeats_processed_total" in text
    assert 'skalds_alerts_fired_total{rule="node_offline"} 1.0' in text


async def test_a_client_that_hangs_up_leaves_the_feed(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base_url) as http:
        async with http.stream("GET", "/api/events/tasks") as response:
            await read_frames(response.aiter_lines(), 1)
            assert (await http.get("/api/events/status")).json()["connectedClients"] == 1
        for _ in range(100):
            if (await http.get("/api/events/status")).json()["connectedClients"] == 0:
                break
            await asyncio.sleep(0.02)
        assert (await http.get("/api/events/status")).json()["connectedClients"] == 0


async def test_a_skalds_status_activity_and_the_api_index_answer(api: Api) -> None:
    await api.system.add_node("n1")
    await api.client.post("/api/tasks", json={"className": CLASS, "id": "t1"})
    await api.system.cycle()
    status = (await api.client.get("/api/skalds/n1/status")).json()
    assert (status["skaldId"], status["status"], status["isOnline"], status["taskCount"]) == (
        "n1",
        "online",
        True,
        1,
    )
    assert status["details"]["canAcceptTasks"] is True
    assert (await api.client.get("/api/skalds/nope/status")).status_code == 404
    activity = (await api.client.get("/api/system/activity", params={"limit": 5})).json()["items"]
    assert 0 < len(activity) <= 5 and {"type", "timestamp"} <= activity[0].keys()
    index = (await api.client.get("/api")).json()
    assert index["endpoints"]["tasks"] == "/api/tasks"


async def test_the_single_process_filter_finds_single_process_nodes(api: Api) -> None:
    """Upstream's ``type`` says node or edge (a single_process node shows as edge); the filter value
    single_process picks those by their mode."""
    await api.system.add_node("n1")
    [view] = await api.services.queries.nodes()
    alone = dataclasses.replace(view.node, id="sp1", mode=NodeMode.SINGLE_PROCESS)
    await api.services.live_state.put_node(alone)
    found = (await api.client.get("/api/skalds", params={"type": "single_process"})).json()
    assert [item["id"] for item in found["items"]] == ["sp1"]
    assert [
        i["id"] for i in (await api.client.get("/api/skalds", params={"type": "node"})).json()["items"]
    ] == ["n1"]
