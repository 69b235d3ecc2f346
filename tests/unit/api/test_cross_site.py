"""With no API key (``skalds up``'s default), a web page the operator visits must not drive the API: writes
from a foreign Origin, text bodies and DNS-rebound Host names are refused; non-browser clients, which send
neither Origin nor Sec-Fetch-Site, and the server's own page are not affected."""

from __future__ import annotations

import pytest

from skalds.entrypoints.api.cross_site import allowed_hosts, host_name
from tests.unit.api.conftest import Api, open_api
from tests.unit.application.harness import CLASS

BODY = {"className": CLASS}


async def test_a_write_from_a_foreign_origin_is_refused_and_changes_nothing(api: Api) -> None:
    foreign = {"origin": "https://evil.example"}
    created = await api.client.post("/api/tasks", json=BODY | {"id": "t1"}, headers=foreign)
    assert created.status_code == 403 and created.json()["error"] == "CROSS_SITE"
    assert (await api.client.get("/api/tasks/t1")).status_code == 404
    await api.client.post("/api/tasks", json=BODY | {"id": "t2"})  # no Origin: a script or the CLI
    bodiless = await api.client.post("/api/tasks/t2/cancel", headers=foreign)
    assert bodiless.status_code == 403
    assert (await api.client.get("/api/tasks/t2")).json()["lifecycleStatus"] == "Created"
    hidden = await api.client.post("/api/tasks/t2/cancel", headers={"sec-fetch-site": "cross-site"})
    assert hidden.status_code == 403
    assert (await api.client.get("/api/tasks", headers=foreign)).status_code == 200  # reads: CORS decides


async def test_the_servers_own_page_and_a_configured_origin_may_write() -> None:
    async for api in open_api(controller={"cors_origins": ["https://ops.example"]}):
        own = await api.client.post("/api/tasks", json=BODY, headers={"origin": "http://127.0.0.1"})
        trusted = await api.client.post("/api/tasks", json=BODY, headers={"origin": "https://ops.example"})
        assert (own.status_code, trusted.status_code) == (201, 201)


async def test_a_body_must_be_json(api: Api) -> None:
    text = await api.client.post(
        "/api/tasks", content=b'{"className": "x"}', headers={"content-type": "text/plain"}
    )
    assert text.status_code == 415 and "application/json" in text.json()["message"]
    typed = await api.client.post(
        "/api/tasks",
        content=b'{"className": "Steerable"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert typed.status_code == 201


async def test_a_host_that_is_not_this_server_is_refused_even_for_reads(api: Api) -> None:
    rebound = await api.client.get("/api/tasks", headers={"host": "attacker.example:8000"})
    assert rebound.status_code == 400 and rebound.json()["error"] == "UNKNOWN_HOST"
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000"):
        assert (await api.client.get("/api/tasks", headers={"host": host})).status_code == 200


@pytest.mark.parametrize(
    ("bound", "configured", "expected"),
    [
        ("127.0.0.1", [], ["localhost", "127.0.0.1", "::1", "127.0.0.1"]),
        ("::1", [], ["localhost", "127.0.0.1", "::1", "::1"]),
        ("0.0.0.0", [], ["*"]),
        ("0.0.0.0", ["ops.example"], ["ops.example"]),
    ],
)
def test_the_hosts_accepted_follow_the_bound_address(
    bound: str, configured: list[str], expected: list[str]
) -> None:
    assert allowed_hosts(bound, configured) == expected


@pytest.mark.parametrize(
    ("host", "name"),
    [("a.example:80", "a.example"), ("[::1]:8000", "::1"), ("::1", "::1"), ("A.Example", "a.example")],
)
def test_a_host_header_is_read_without_its_port(host: str, name: str) -> None:
    assert host_name(host) == name
