"""What a client sends that MongoDB cannot store is refused with a 422 naming it, never a 500: BSON holds
64-bit integers. A task's integer fields, a page and an expected version are bounded by the request models
before any store; an attachment value (however deep) is free-form and reaches the Mongo adapter's own
check, which names its path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from skalds.bootstrap import build_container
from skalds.entrypoints.api.app import create_app
from tests.fakes import FakeClock
from tests.unit.application.harness import CLASS, SteerableWorkers, System, settings_for_tests

HUGE = 2**70


def _names(error: dict[str, Any], path: str) -> None:
    """A field of the body is ``field``; a value inside attachments is named by its path in the message."""
    if path.startswith("attachments."):
        assert error["field"] == "attachments" and f"{path} = " in error["message"], error
    else:
        assert error["field"] == path, error


@pytest.fixture
async def client(mongo_url: str, unique: str) -> AsyncIterator[AsyncTestClient[Any]]:
    settings = settings_for_tests(
        backends={"repository": "mongo"}, mongo={"url": mongo_url, "database": unique}
    )
    app = create_app(build_container(settings), run_loops=False)
    async with AsyncTestClient(app, base_url="http://127.0.0.1") as opened:
        # a node offering CLASS, so a create passes the class check and reaches the store
        system = System(services=app.state.services, clock=FakeClock(), workers=SteerableWorkers())
        await system.add_node("n1", listening=False)
        yield opened
        await system.close()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"maxAttempts": HUGE}, "maxAttempts"),
        ({"deadlineDateTime": HUGE}, "deadlineDateTime"),
        ({"priority": HUGE}, "priority"),
        ({"attachments": {"a": HUGE}}, "attachments.a"),
        ({"attachments": {"a": [1, {"b": -HUGE}]}}, "attachments.a[1].b"),
    ],
)
async def test_an_integer_beyond_64_bits_in_a_create_is_a_422_naming_it(
    client: AsyncTestClient[Any], body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/tasks", json={"className": CLASS, "id": "t1", **body})
    assert response.status_code == 422, response.text
    _names(response.json(), field)
    assert (await client.get("/api/tasks/t1")).status_code == 404  # nothing half-stored


async def test_an_integer_beyond_64_bits_in_an_update_or_a_query_is_a_422_naming_it(
    client: AsyncTestClient[Any],
) -> None:
    assert (await client.post("/api/tasks", json={"className": CLASS, "id": "t1"})).status_code == 201
    for method, path, body, field in [
        ("PUT", "/api/tasks/t1/attachments", {"attachments": {"a": HUGE}}, "attachments.a"),
        ("PATCH", "/api/tasks/t1/attachments", {"attachments": {"a": HUGE}}, "attachments.a"),
        ("PUT", "/api/tasks/t1/attachments", {"attachments": {}, "expectedVersion": HUGE}, "expectedVersion"),
    ]:
        response = await client.request(method, path, json=body)
        assert response.status_code == 422, (method, path, response.text)
        _names(response.json(), field)
    page = await client.get("/api/tasks", params={"page": HUGE})
    assert page.status_code == 422 and page.json()["field"] == "page"
    stored = (await client.get("/api/tasks/t1")).json()
    assert stored["attachments"] == {} and stored["attachmentsVersion"] == 1
