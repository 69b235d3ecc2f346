"""``POST /api/tasks/batch``: 201 with the ids in order, one 422 naming the bad item and nothing created,
clear refusals of empty, oversized and malformed batches (never a 500), and its OpenAPI description."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.unit.api.conftest import Api, open_api
from tests.unit.application.harness import CLASS

BATCH = "/api/tasks/batch"


def bodies(count: int, **fields: Any) -> list[dict[str, Any]]:
    return [{"className": CLASS, "id": f"t{i}", **fields} for i in range(count)]


async def total(api: Api) -> int:
    return int((await api.client.get("/api/tasks")).json()["total"])


@pytest.fixture
async def small_batches() -> AsyncIterator[Api]:
    async for opened in open_api(controller={"max_batch_tasks": 3}):
        yield opened


async def test_a_batch_answers_201_with_the_ids_in_order_in_the_success_envelope(api: Api) -> None:
    tasks = [*bodies(3, attachments={"fps": 5}), {"className": CLASS, "priority": 4}]
    response = await api.client.post(BATCH, json={"tasks": tasks})
    assert response.status_code == 201, response.text
    answer = response.json()
    assert (answer["success"], answer["message"]) == (True, "4 tasks created")
    ids = answer["data"]["ids"]
    assert ids[:3] == ["t0", "t1", "t2"] and len(ids) == 4
    generated = (await api.client.get(f"/api/tasks/{ids[3]}")).json()
    assert (generated["priority"], generated["lifecycleStatus"]) == (4, "Created")
    assert (await api.client.get("/api/tasks/t1")).json()["attachments"] == {"fps": 5}


async def test_a_thousand_normal_bodies_fit_in_one_request(api: Api) -> None:
    """3 KB of attachments each: 3 MB, over the app's 2 MiB body limit for other routes."""
    tasks = bodies(1_000, attachments={"path": "/data/" + "x" * 3_000}, name="backfill")
    response = await api.client.post(BATCH, json={"tasks": tasks})
    assert response.status_code == 201, response.text[:300]
    assert response.json()["data"]["ids"] == [f"t{i}" for i in range(1_000)]
    assert await total(api) == 1_000


@pytest.mark.parametrize(
    ("index", "change", "field"),
    [
        (3, {"className": "NoSuchWorker"}, "tasks[3].className"),
        (1, {"priority": 11}, "tasks[1].priority"),
        (2, {"colour": "red"}, "tasks[2].colour"),
        (0, {"id": "a b"}, "tasks[0].id"),
        (4, {"attachments": []}, "tasks[4].attachments"),
        (2, {"id": "t0"}, "tasks[2].id"),
    ],
)
async def test_one_bad_item_is_one_422_naming_it_and_nothing_is_created(
    api: Api, index: int, change: dict[str, Any], field: str
) -> None:
    api.services.catalog.register(CLASS)
    tasks = bodies(5)
    tasks[index] = {**tasks[index], **change}
    response = await api.client.post(BATCH, json={"tasks": tasks})
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["error"], body["field"]) == ("VALIDATION_ERROR", field)
    assert body["message"].startswith(f"{field}: ")
    assert await total(api) == 0


async def test_an_unknown_class_is_named_with_the_known_ones(api: Api) -> None:
    api.services.catalog.register(CLASS)
    tasks = [*bodies(3), {"className": "X"}]
    message = (await api.client.post(BATCH, json={"tasks": tasks})).json()["message"]
    assert message == f"tasks[3].className: unknown worker class 'X'; known: {CLASS}"


async def test_an_id_already_stored_is_a_422_naming_the_item(api: Api) -> None:
    assert (await api.client.post("/api/tasks", json={"className": CLASS, "id": "t2"})).status_code == 201
    response = await api.client.post(BATCH, json={"tasks": bodies(4)})
    assert response.status_code == 422
    assert response.json()["message"] == "tasks[2].id: task 't2' already exists"
    assert await total(api) == 1


async def test_more_than_the_limit_is_a_422_naming_tasks_and_the_limit(api: Api) -> None:
    response = await api.client.post(BATCH, json={"tasks": bodies(1_001)})
    assert response.status_code == 422
    body = response.json()
    assert body["field"] == "tasks"
    assert "at most 1000 tasks per request" in body["message"] and "got 1001" in body["message"]
    assert await total(api) == 0


async def test_the_limit_is_a_setting(small_batches: Api) -> None:
    client = small_batches.client
    assert (await client.post(BATCH, json={"tasks": bodies(3)})).status_code == 201
    refused = await client.post(BATCH, json={"tasks": bodies(4)})
    assert refused.status_code == 422
    assert "at most 3 tasks" in refused.json()["message"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"tasks": []}, "tasks", "at least one task"),
        ({}, "tasks", "must be an array"),
        ({"tasks": {"className": CLASS}}, "tasks", "got an object"),
        ({"tasks": [{"className": CLASS}, 7]}, "tasks[1]", "must be an object"),
        ({"tasks": [{"className": CLASS}, [{"className": CLASS}]]}, "tasks[1]", "got an array"),
        ({"tasks": [None]}, "tasks[0]", "got null"),
        ({"tasks": [{}]}, "tasks[0].className", "required"),
        ({"tasks": [{"className": CLASS}], "dryRun": True}, "dryRun", "not a field of a batch"),
    ],
)
async def test_malformed_batches_are_a_422_naming_the_place(
    api: Api, body: dict[str, Any], field: str, words: str
) -> None:
    response = await api.client.post(BATCH, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert words in response.json()["message"]
    assert await total(api) == 0


async def test_a_body_that_is_not_an_object_or_not_json_is_a_client_error(api: Api) -> None:
    assert (await api.client.post(BATCH, json=[{"className": CLASS}])).status_code == 422
    broken = await api.client.post(BATCH, content=b"{not json", headers={"content-type": "application/json"})
    assert 400 <= broken.status_code < 500
    huge = await api.client.post(
        BATCH, content=b" " * (17 * 1024 * 1024), headers={"content-type": "application/json"}
    )
    assert (huge.status_code, huge.json()["error"]) == (413, "TOO_LARGE")


async def test_openapi_documents_the_request_and_the_response(api: Api) -> None:
    spec = (await api.client.get("/schema/openapi.json")).json()
    operation = spec["paths"][BATCH]["post"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]
    assert request["required"] == ["tasks"]
    items = request["properties"]["tasks"]["items"]
    assert items["required"] == ["className"] and "attachments" in items["properties"]
    assert operation["summary"] == "Create many tasks, all or none"
    assert "tasks[3].className" in operation["description"]
    response = operation["responses"]["201"]["content"]["application/json"]["schema"]
    assert response == {"$ref": "#/components/schemas/BatchCreatedResponse"}
    envelope = spec["components"]["schemas"]["BatchCreatedResponse"]
    assert set(envelope["required"]) == {"success", "message", "data"}
    assert spec["components"]["schemas"]["CreatedIds"]["properties"]["ids"]["type"] == "array"
