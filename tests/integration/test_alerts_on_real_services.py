"""The alert lifecycle on Kafka, Redis and MongoDB-wire at once, through the HTTP API with the rules running:
an event that came over Kafka fires an alert, a Redis node reading fires another, both are acknowledged and
silenced over HTTP, every change goes out on Kafka for other controllers' streams, and both resolve."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from skalds.bootstrap import Services, build_container, start, stop
from skalds.domain import events as ev
from skalds.domain.nodes import Node
from skalds.entrypoints.api.app import create_app
from tests.integration.test_whole_system_on_real_services import real_settings
from tests.unit.application.harness import settings_for_tests

HOUR = 3_600_000


async def eventually(check: Callable[[], Awaitable[Any]], *, within_s: float = 20.0) -> Any:
    """Poll until ``check`` gives something truthy (Kafka delivers in milliseconds, not synchronously)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not (found := await check()):
        assert asyncio.get_running_loop().time() < deadline, f"not true within {within_s} s"
        await asyncio.sleep(0.05)
    return found


@pytest.fixture
async def api(
    kafka_bootstrap: str, redis_url: str, mongo_url: str, unique: str
) -> AsyncIterator[tuple[AsyncTestClient[Any], Services]]:
    """The API with the rules running, and a peer on the same backends (as another process would be): the
    test reaches Kafka and Redis through the peer, never through the app's own clients."""
    sections = real_settings(kafka_bootstrap, redis_url, mongo_url, unique)
    settings = settings_for_tests(**sections, monitor={"interval_ms": 200}, controller={"mode": "DISPATCHER"})
    app = create_app(build_container(settings), run_loops=True)
    peer_container = build_container(settings)
    peer = await start(peer_container)
    try:
        async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:
            yield client, peer
    finally:
        await stop(peer_container)


async def firing(client: AsyncTestClient[Any], subject: str) -> dict[str, Any] | None:
    items = (await client.get("/api/alerts?active=true")).json()["items"]
    return next((a for a in items if a["subject"] == subject), None)


async def test_alerts_fire_are_acknowledged_silenced_and_resolve_on_real_services(
    api: tuple[AsyncTestClient[Any], Services],
) -> None:
    client, services = api
    watcher = services.subscriber.events()  # what another controller's live stream would see
    await services.publisher.publish(ev.NodeWentOffline(at=1, node_id="gone", silent_for_ms=31_000))
    offline = await eventually(lambda: firing(client, "gone"))
    assert (offline["rule"], offline["status"]) == ("node_offline", "firing")

    now = services.clock.now_ms()
    await services.live_state.put_node(
        Node(id="hot", registered_at=now, last_heartbeat_at=now, cpu_percent=99)
    )
    hot = await eventually(lambda: firing(client, "hot"))
    assert hot["rule"] == "node_resources"

    acked = await client.post(f"/api/alerts/{offline['id']}/ack", json={"by": "ann"})
    assert acked.status_code == 200 and acked.json()["acknowledgedBy"] == "ann"
    body = {"rule": "node_resources", "subject": "hot", "durationMs": HOUR, "createdBy": "ann"}
    silence = (await client.post("/api/silences", json=body)).json()
    assert (await firing(client, "hot") or {}).get("silencedBy") == silence["id"]

    await services.publisher.publish(ev.NodeCameOnline(at=2, node_id="gone"))
    await services.live_state.put_node(
        Node(id="hot", registered_at=now, last_heartbeat_at=now, cpu_percent=5)
    )

    async def both_resolved() -> bool:
        got = [(await client.get(f"/api/alerts/{a['id']}")).json() for a in (offline, hot)]
        return all(a["status"] == "resolved" and a["resolvedAt"] >= a["raisedAt"] for a in got)

    await eventually(both_resolved)
    seen: list[ev.DomainEvent] = []

    async def all_streamed() -> bool:
        async for event in watcher:
            seen.append(event)
            kinds = {
                type(e).__name__ for e in seen if "Alert" in type(e).__name__ or "Silence" in type(e).__name__
            }
            if kinds >= {"AlertRaised", "AlertAcknowledged", "SilenceCreated", "AlertResolved"}:
                return True
        return False

    assert await asyncio.wait_for(all_streamed(), 20)
    await watcher.close()
