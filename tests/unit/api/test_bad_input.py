"""Nothing a client sends is a 500: bodies nested too deep, integers no store can hold, odd asset paths,
values of the wrong type and unknown filter values are each refused with a 4xx naming what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.api.conftest import Api, open_api
from tests.unit.application.harness import CLASS

DEEP = "[" * 10_000 + "]" * 10_000
HUGE = 2**70


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/tasks", DEEP),
        ("POST", "/api/tasks", '{"className": "X", "attachments": {"a": ' + DEEP + "}}"),
        ("POST", "/api/tasks/batch", '{"tasks": ' + DEEP + "}"),
        ("PUT", "/api/tasks/t1/attachments", '{"attachments": {"a": ' + DEEP + "}}"),
    ],
)
async def test_a_body_nested_ten_thousand_deep_is_a_400_that_says_so(
    api: Api, method: str, path: str, body: str
) -> None:
    response = await api.client.request(
        method, path, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["message"] == "body: JSON nested too deeply to decode"


async def test_attachments_nested_deeper_than_the_limit_are_a_422_naming_them(api: Api) -> None:
    nested: Any = 1
    for _ in range(40):
        nested = {"a": nested}
    response = await api.client.post("/api/tasks", json={"className": CLASS, "attachments": nested})
    assert response.status_code == 422
    assert response.json()["field"] == "attachments" and "32" in response.json()["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"maxAttempts": HUGE}, "maxAttempts"),
        ({"deadlineDateTime": HUGE}, "deadlineDateTime"),
        ({"deadlineDateTime": -1}, "deadlineDateTime"),
        ({"priority": True}, "priority"),
        ({"maxAttempts": "3"}, "maxAttempts"),
    ],
)
async def test_integers_no_store_holds_and_values_of_the_wrong_type_are_refused(
    api: Api, body: dict[str, Any], field: str
) -> None:
    response = await api.client.post("/api/tasks", json={"className": CLASS, **body})
    assert response.status_code == 422 and response.json()["field"] == field


async def test_a_page_beyond_any_offset_is_a_422(api: Api) -> None:
    response = await api.client.get("/api/tasks", params={"page": HUGE})
    assert response.status_code == 422 and response.json()["field"] == "page"


@pytest.mark.parametrize("asset", ["a%00b.js", "..%2F..%2Findex.html", "pages", "nope.js"])
async def test_an_odd_asset_path_is_a_404_naming_only_the_asset(api: Api, asset: str) -> None:
    response = await api.client.get(f"/dashboard/assets/{asset}")
    assert response.status_code == 404
    assert "/skalds/" not in response.json()["message"] and "no dashboard asset" in response.json()["message"]


async def test_an_unknown_node_filter_and_an_empty_body_say_what_is_wrong(api: Api) -> None:
    for query in ({"status": "bogus"}, {"type": "cloud"}):
        response = await api.client.get("/api/skalds", params=query)
        assert response.status_code == 422 and response.json()["field"] == next(iter(query))
    empty = await api.client.post("/api/tasks", content=b"", headers={"content-type": "application/json"})
    assert empty.status_code == 422
    assert empty.json()["message"] == "body: a JSON body is required"


@pytest.mark.parametrize("task_id", [".", "..", "classnames", "a/b", "a?b", "a#b", "a%2Fb", "a\\b", "a\x07b"])
async def test_an_id_its_url_could_not_reach_is_refused_at_create(api: Api, task_id: str) -> None:
    response = await api.client.post("/api/tasks", json={"className": CLASS, "id": task_id})
    assert response.status_code == 422 and response.json()["field"] == "id"


@pytest.mark.parametrize("task_id", ["camera-7", "job_2026.12.07", "user@host:42", "Ünïcode"])
async def test_an_ordinary_id_is_read_back_by_its_url(api: Api, task_id: str) -> None:
    created = await api.client.post("/api/tasks", json={"className": CLASS, "id": task_id})
    assert created.status_code == 201
    assert (await api.client.get(f"/api/tasks/{task_id}")).json()["id"] == task_id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"description": "x" * 10_001}, "description"),
        ({"name": "x" * 10_001}, "name"),
        ({"source": "x" * 10_001}, "source"),
        ({"dependencies": [f"d{i}" for i in range(1_001)]}, "dependencies"),
        ({"dependencies": ["x" * 201]}, "dependencies[0]"),
        ({"requiredLabels": {f"k{i}": "v" for i in range(65)}}, "requiredLabels"),
        ({"requiredLabels": {"zone": "x" * 201}}, "requiredLabels.zone"),
    ],
)
async def test_a_field_over_its_size_limit_is_a_422_naming_the_field_and_the_setting(
    api: Api, body: dict[str, Any], field: str
) -> None:
    response = await api.client.post("/api/tasks", json={"className": CLASS, **body})
    assert response.status_code == 422 and response.json()["field"] == field
    assert "limits." in response.json()["message"]


async def test_the_limits_are_settings_and_a_batch_names_its_item() -> None:
    async for api in open_api(limits={"text_chars": 10, "attachments_bytes": 20}):
        items = [{"className": CLASS}, {"className": CLASS, "name": "eleven char"}]
        batch = await api.client.post("/api/tasks/batch", json={"tasks": items})
        assert batch.status_code == 422 and batch.json()["field"] == "tasks[1].name"
        big = await api.client.post("/api/tasks", json={"className": CLASS, "attachments": {"a": "x" * 30}})
        assert big.status_code == 422 and "limits.attachments_bytes" in big.json()["message"]


async def test_a_body_over_the_request_limit_is_a_413(api: Api) -> None:
    response = await api.client.post("/api/tasks", json={"className": CLASS, "description": "x" * 3_000_000})
    assert response.status_code == 413 and response.json()["error"] == "TOO_LARGE"


async def test_the_body_limits_are_settings_and_the_413_names_them() -> None:
    async for api in open_api(limits={"body_bytes": 4_096, "batch_body_bytes": 8_192}):
        one = await api.client.post("/api/tasks", json={"className": CLASS, "description": "x" * 5_000})
        assert one.status_code == 413 and "(4,096 bytes)" in one.json()["message"]
        batch = [{"className": CLASS, "description": "x" * 3_000}] * 2
        fits = await api.client.post("/api/tasks/batch", json={"tasks": batch})
        assert fits.status_code == 201, fits.text  # over the single limit, under the batch's own
        over = await api.client.post("/api/tasks/batch", json={"tasks": batch * 2})
        assert over.status_code == 413 and "(8,192 bytes)" in over.json()["message"]
