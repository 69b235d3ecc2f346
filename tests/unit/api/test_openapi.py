"""``/schema`` is the API: bodies are described by the models that read them, every operation lists the
errors it can answer in the one error shape, and HEAD and OPTIONS behave as HTTP says. (That each answer
matches its schema is checked from outside by tests/integration/test_api_conformance.py.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.unit.api.conftest import Api, Served

BODIES = {
    ("post", "/api/tasks"): "CreateTaskRequest",
    ("put", "/api/tasks/{task_id}/attachments"): "UpdateAttachmentsRequest",
    ("patch", "/api/tasks/{task_id}/attachments"): "UpdateAttachmentsRequest",
    ("put", "/api/tasks/{task_id}/status"): "UpdateStatusRequest",
}


async def _spec(api: Api) -> dict[str, Any]:
    response = await api.client.get("/schema/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


async def test_request_bodies_are_the_models_that_read_them(api: Api) -> None:
    spec = await _spec(api)
    for (method, path), title in BODIES.items():
        schema = spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        assert schema["title"] == title and schema["additionalProperties"] is False, (method, path)
    create = spec["paths"]["/api/tasks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create["required"] == ["className"]
    assert create["properties"]["maxAttempts"]["anyOf"][0]["maximum"] == 1_000_000
    status = spec["paths"]["/api/tasks/{task_id}/status"]["put"]["requestBody"]["content"]
    assert status["application/json"]["schema"]["properties"]["lifecycleStatus"]["enum"] == [
        "Created",
        "Cancelled",
    ]


async def test_every_operation_documents_its_errors_in_the_one_shape(api: Api) -> None:
    spec = await _spec(api)
    error = spec["components"]["schemas"]["ErrorReply"]
    assert set(error["required"]) == {"error", "message", "status_code"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"400", "401", "503"} <= set(responses), (method, path)
            if method in ("post", "put", "patch", "delete"):
                assert {"403", "413", "415", "422"} <= set(responses), (method, path)
            if "{" in path:
                assert "404" in responses, (method, path)
            for status, answer in responses.items():
                if status.startswith(("4", "5")) and path != "/api/system/health":
                    shown = answer["content"]["application/json"]["schema"]
                    assert shown == {"$ref": "#/components/schemas/ErrorReply"}, (method, path, status)


async def test_replies_are_typed_not_any_object(api: Api) -> None:
    spec = await _spec(api)
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            ok = next(answer for status, answer in operation["responses"].items() if status.startswith("2"))
            if (path.startswith("/api/events/") and path != "/api/events/status") or path.endswith("/stream"):
                continue  # a live stream: text/event-stream
            schema = ok["content"]["application/json"]["schema"]
            assert "$ref" in schema or schema.get("type") == "array", (method, path, schema)


async def test_head_answers_what_get_would_without_the_body(api: Api) -> None:
    got = await api.client.get("/api/tasks")
    head = await api.client.head("/api/tasks")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert (await api.client.head("/api/tasks/nope")).status_code == 404
    assert (await api.client.head("/api/nothing-here")).status_code == 404


async def test_head_on_a_live_stream_ends_after_the_headers(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.base_url, timeout=5.0) as client:
        head = await client.head("/api/events/tasks")
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/event-stream")


@pytest.mark.parametrize(
    ("path", "allow"),
    [
        ("/api/tasks", "GET, HEAD, OPTIONS, POST"),
        ("/api/tasks/t1", "DELETE, GET, HEAD, OPTIONS"),
        ("/api/tasks/t1/attachments", "OPTIONS, PATCH, PUT"),
        ("/api/tasks/t1/cancel", "OPTIONS, POST"),
    ],
)
async def test_options_lists_every_method_of_the_path(api: Api, path: str, allow: str) -> None:
    response = await api.client.options(path)
    assert response.status_code == 204 and response.headers["allow"] == allow


async def test_an_answer_no_route_made_still_carries_the_security_headers(api: Api) -> None:
    response = await api.client.get("/api/nothing-here")
    assert response.status_code == 404 and response.json()["error"] == "NOT_FOUND"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("method", "path"), [("PUT", "/api/tasks"), ("PUT", "/api/tasks/t1"), ("GET", "/api/tasks/batch")]
)
async def test_a_405_lists_the_same_methods_as_options(api: Api, method: str, path: str) -> None:
    refused = await api.client.request(method, path, json={})
    assert refused.status_code == 405
    assert refused.headers["allow"] == (await api.client.options(path)).headers["allow"]


async def test_a_body_takes_the_wire_names_only(api: Api) -> None:
    """The schema says camelCase and no other key; the models read exactly that."""
    response = await api.client.post("/api/tasks", json={"class_name": "Steerable"})
    assert response.status_code == 422
    assert {p["field"] for p in response.json()["errors"]} == {"className", "class_name"}
