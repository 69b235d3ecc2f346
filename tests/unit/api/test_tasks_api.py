"""/api/tasks: upstream's paths and envelopes, the new actions, and an answer for every kind of bad input."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from tests.unit.api.conftest import Api
from tests.unit.application.harness import CLASS

UPSTREAM_TASK_FIELDS = {
    "id", "className", "lifecycleStatus", "executor", "createDateTime", "updateDateTime", "mode",
    "attachments", "heartbeat", "error", "exception", "priority",
}  # fmt: skip


async def create(api: Api, **fields: object) -> dict[str, object]:
    response = await api.client.post("/api/tasks", json={"className": CLASS, **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_create_then_read_in_upstreams_shape(api: Api) -> None:
    created = await create(api, id="cam-1", attachments={"fps": 5}, priority=3)
    assert created.keys() >= UPSTREAM_TASK_FIELDS
    assert (created["id"], created["lifecycleStatus"], created["mode"], created["version"]) == (
        "cam-1",
        "Created",
        "Passive",
        1,
    )
    fetched = (await api.client.get("/api/tasks/cam-1")).json()
    assert fetched["attachments"] == {"fps": 5}
    assert fetched["heartbeat"] == 0


async def test_list_pages_newest_first_with_and_without_trailing_slash(api: Api) -> None:
    for i in range(5):
        api.system.clock.advance(1)
        await create(api, id=f"t{i}")
    for path in ("/api/tasks", "/api/tasks/"):
        page = (await api.client.get(path, params={"page": 2, "pageSize": 2})).json()
        assert (page["total"], page["page"], page["pageSize"]) == (5, 2, 2)
        assert [item["id"] for item in page["items"]] == ["t2", "t1"]


async def test_filters_treat_ids_as_text_and_statuses_case_insensitively(api: Api) -> None:
    await create(api, id="cam.1")
    await create(api, id="camX1")
    page = (await api.client.get("/api/tasks", params={"id": "cam.1", "lifecycleStatus": "created"})).json()
    assert [i["id"] for i in page["items"]] == ["cam.1"]
    assert (await api.client.get("/api/tasks/classnames")).json() == [CLASS]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "className"),
        ({"className": CLASS, "priority": 11}, "priority"),
        ({"className": CLASS, "colour": 1}, "colour"),
        ({"className": CLASS, "id": "a b"}, "id"),
        ({"className": CLASS, "attachments": []}, "attachments"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(api: Api, body: dict[str, object], field: str) -> None:
    response = await api.client.post("/api/tasks", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert field in response.json()["message"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lifecycleStatus": "Sleeping"}, "lifecycleStatus"),
        ({"pageSize": 1000}, "pageSize"),
        ({"page": 0}, "page"),
    ],
)
async def test_bad_query_parameters_are_a_422_naming_them(
    api: Api, params: dict[str, object], field: str
) -> None:
    response = await api.client.get("/api/tasks", params=params)
    assert response.status_code == 422, response.text
    assert field in response.json()["message"]


async def test_malformed_json_is_a_client_error_not_a_500(api: Api) -> None:
    response = await api.client.post(
        "/api/tasks", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    assert response.json()["message"]


async def test_unknown_ids_are_404_with_a_message(api: Api) -> None:
    for method, path in (
        ("GET", "/api/tasks/nope"),
        ("POST", "/api/tasks/nope/cancel"),
        ("GET", "/api/tasks/nope/heartbeat"),
    ):
        response = await api.client.request(method, path)
        assert response.status_code == 404
        assert "nope" in response.json()["message"]


async def test_illegal_changes_are_409_and_name_both_statuses(api: Api) -> None:
    await create(api, id="t1")
    response = await api.client.post("/api/tasks/t1/pause")
    assert response.status_code == 409
    body = response.json()
    assert (body["error"], body["fromStatus"]) == ("INVALID_TRANSITION", "Created")


async def test_a_stale_version_is_a_409_conflict(api: Api) -> None:
    await create(api, id="t1")
    await api.client.put("/api/tasks/t1/attachments", json={"attachments": {"fps": 2}})
    response = await api.client.put(
        "/api/tasks/t1/attachments", json={"attachments": {"fps": 3}, "expectedVersion": 1}
    )
    assert response.status_code == 409
    assert response.json()["currentVersion"] == 2


async def test_upstreams_status_endpoint_keeps_its_reply_envelope(api: Api) -> None:
    await create(api, id="t1")
    reply = (await api.client.put("/api/tasks/t1/status", json={"lifecycleStatus": "Cancelled"})).json()
    assert reply["success"] is True
    assert reply["message"] == "Task status updated to Cancelled"
    assert (reply["data"]["taskId"], reply["data"]["status"]) == ("t1", "Cancelled")
    again = (await api.client.put("/api/tasks/t1/status", json={"lifecycleStatus": "Created"})).json()
    assert again["data"]["status"] == "Created"
    refused = await api.client.put("/api/tasks/t1/status", json={"lifecycleStatus": "Running"})
    assert refused.status_code == 422


async def test_attachment_updates_answer_in_upstreams_envelope(api: Api) -> None:
    await create(api, id="t1")
    reply = (await api.client.put("/api/tasks/t1/attachments", json={"attachments": {"fps": 9}})).json()
    assert reply["data"] == {"taskId": "t1", "attachments": {"fps": 9}, "attachmentsVersion": 2}


async def test_delete_cancels_like_upstream_and_purge_removes(api: Api) -> None:
    await create(api, id="t1")
    reply = (await api.client.delete("/api/tasks/t1")).json()
    assert reply["data"] == {"taskId": "t1", "status": "Cancelled"}
    assert (await api.client.delete("/api/tasks/t1", params={"purge": "true"})).status_code == 200
    assert (await api.client.get("/api/tasks/t1")).status_code == 404


async def test_cancelling_a_running_task_by_status_answers_what_was_set_as_upstream_does(api: Api) -> None:
    """Upstream's modal shows ``data.status``: a cancel must read Cancelled there, not Running; that the
    worker is still stopping is in our own fields."""
    await api.system.add_node("n1")
    await create(api, id="t1")
    await api.system.cycle()
    reply = (await api.client.put("/api/tasks/t1/status", json={"lifecycleStatus": "Cancelled"})).json()
    data = reply["data"]
    assert (data["status"], data["lifecycleStatus"], data["desiredState"]) == (
        "Cancelled",
        "Running",
        "cancel",
    )


async def test_a_running_task_can_be_paused_resumed_and_cancelled_through_the_api(api: Api) -> None:
    await api.system.add_node("n1")
    await create(api, id="t1")
    await api.system.cycle()
    assert (await api.client.get("/api/tasks/t1")).json()["lifecycleStatus"] == "Running"
    paused = (await api.client.post("/api/tasks/t1/pause")).json()
    assert (paused["lifecycleStatus"], paused["desiredState"]) == ("Running", "pause")
    await api.system.settle()
    await api.system.cycle()
    assert (await api.client.get("/api/tasks/t1")).json()["lifecycleStatus"] == "Paused"
    await api.client.post("/api/tasks/t1/resume")
    await api.system.settle()
    await api.system.cycle()
    await api.client.post("/api/tasks/t1/cancel")
    await api.system.settle()
    await api.system.cycle()
    task = (await api.client.get("/api/tasks/t1")).json()
    assert task["lifecycleStatus"] == "Cancelled"
    beats = (await api.client.get("/api/tasks/t1/heartbeat")).json()
    assert beats["taskId"] == "t1" and beats["heartbeatHistory"]


async def test_a_queued_task_says_why_it_waits(api: Api) -> None:
    await create(api, id="t1")
    await api.system.cycle()
    assert (await api.client.get("/api/tasks/t1")).json()["pendingReason"] == "no skald nodes are registered"


async def test_with_an_api_key_mutations_need_it_and_reads_do_not(locked_api: Api) -> None:
    client = locked_api.client
    refused = await client.post("/api/tasks", json={"className": CLASS})
    assert refused.status_code == 401
    assert "X-API-Key" in refused.json()["message"]
    wrong = await client.post("/api/tasks", json={"className": CLASS}, headers={"X-API-Key": "nope"})
    assert wrong.status_code == 401
    accepted = await client.post("/api/tasks", json={"className": CLASS}, headers={"X-API-Key": "s3cret"})
    assert accepted.status_code == 201
    assert (await client.get("/api/tasks")).status_code == 200


async def test_reads_can_be_protected_too_with_the_key_in_the_query_for_event_sources(
    guarded_api: Api,
) -> None:
    client = guarded_api.client
    assert (await client.get("/api/tasks")).status_code == 401
    assert (await client.get("/api/tasks", headers={"X-API-Key": "s3cret"})).status_code == 200
    assert (await client.get("/api/events/status", params={"apiKey": "s3cret"})).status_code == 200
    assert (await client.get("/schema/openapi.json")).status_code == 200
    # the dashboard's page and scripts load without the key (a browser cannot send it for them); their
    # data calls carry it
    assert (await client.get("/dashboard")).status_code == 200
    assert (await client.get("/dashboard/tasks/t1")).status_code == 200
    assert (await client.get("/dashboard/assets/main.js")).status_code == 200
    assert (await client.get("/", follow_redirects=False)).status_code in (301, 302, 307, 308)


async def test_cors_allows_only_the_configured_origins(guarded_api: Api) -> None:
    allowed = await guarded_api.client.options(
        "/api/tasks", headers={"Origin": "https://ops.example", "Access-Control-Request-Method": "GET"}
    )
    assert allowed.headers.get("access-control-allow-origin") == "https://ops.example"
    other = await guarded_api.client.options(
        "/api/tasks", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert other.headers.get("access-control-allow-origin") != "https://evil.example"


async def test_a_failed_task_is_retried_through_the_api_and_a_running_one_is_refused(api: Api) -> None:
    await api.system.add_node("n1")
    await create(api, id="t1", maxAttempts=1)
    await api.system.cycle()
    refused = await api.client.post("/api/tasks/t1/retry")
    assert refused.status_code == 409 and "Running" in refused.json()["message"]
    api.system.workers.control("t1").fail = "camera unreachable"
    await api.system.settle()
    await api.system.cycle()
    failed = (await api.client.get("/api/tasks/t1")).json()
    assert failed["lifecycleStatus"] == "Failed"
    assert failed["exception"].startswith("RuntimeError: camera unreachable")  # with the traceback
    retried = await api.client.post("/api/tasks/t1/retry")
    assert retried.status_code == 200
    assert (retried.json()["lifecycleStatus"], retried.json()["maxAttempts"]) == ("Created", 2)
    assert (await api.client.post("/api/tasks/nope/retry")).status_code == 404


async def test_put_replaces_the_attachments_and_patch_changes_only_the_keys_given(api: Api) -> None:
    """docs/api.md, "Attachment updates": PUT = the whole, validated (keys left out take the model's
    defaults); PATCH = a merge; a key the model does not have is a 422 naming it, for both."""

    class Camera(BaseModel):
        model_config = ConfigDict(populate_by_name=True)
        rtsp_url: str = Field(alias="rtspUrl")
        fps: int = 5
        detect: bool = False

    api.services.catalog.register("Camera", Camera)
    body = {
        "className": "Camera",
        "id": "cam",
        "attachments": {"rtspUrl": "rtsp://a", "fps": 25, "detect": True},
    }
    assert (await api.client.post("/api/tasks", json=body)).status_code == 201
    patched = await api.client.patch("/api/tasks/cam/attachments", json={"attachments": {"fps": 10}})
    assert patched.json()["data"]["attachments"] == {"rtspUrl": "rtsp://a", "fps": 10, "detect": True}
    replaced = await api.client.put(
        "/api/tasks/cam/attachments", json={"attachments": {"rtspUrl": "rtsp://b"}}
    )
    assert replaced.json()["data"]["attachments"] == {"rtspUrl": "rtsp://b", "fps": 5, "detect": False}
    for method in ("PUT", "PATCH"):
        typo = await api.client.request(
            method, "/api/tasks/cam/attachments", json={"attachments": {"rtspUrl": "rtsp://b", "fsp": 30}}
        )
        assert typo.status_code == 422 and typo.json()["field"] == "attachments.fsp"
    stale = await api.client.patch(
        "/api/tasks/cam/attachments", json={"attachments": {"fps": 1}, "expectedVersion": 1}
    )
    assert stale.status_code == 409


async def test_a_controller_with_no_worker_classes_of_its_own_merges_a_patch(api: Api) -> None:
    """``skalds controller`` runs no workers, so its catalog knows no class: a PATCH still merges."""
    body = {"className": "Elsewhere", "id": "e1", "attachments": {"a": 1, "b": 2}}
    assert (await api.client.post("/api/tasks", json=body)).status_code == 201
    patched = await api.client.patch("/api/tasks/e1/attachments", json={"attachments": {"b": 3}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["attachments"] == {"a": 1, "b": 3}
