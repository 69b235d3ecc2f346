"""``/api/alerts`` and ``/api/silences``: list, acknowledge, silence, expire; 4xx for what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from skalds.domain import events as ev
from tests.unit.api.conftest import Api

HOUR = 3_600_000
SILENCE = {"rule": "node_offline", "subject": "n1", "durationMs": HOUR, "createdBy": "ann"}


async def fire(api: Api, node: str = "n1") -> dict[str, Any]:
    await api.services.alerts.observe(ev.NodeWentOffline(at=0, node_id=node, silent_for_ms=31_000))
    [alert] = [
        a for a in (await api.client.get("/api/alerts?active=true")).json()["items"] if a["subject"] == node
    ]
    return dict(alert)


async def test_an_alert_is_listed_firing_then_resolved_with_both_times(api: Api) -> None:
    alert = await fire(api)
    assert (alert["status"], alert["count"], alert["resolvedAt"]) == ("firing", 1, None)
    assert alert["lastSeenAt"] == alert["raisedAt"] and alert["acknowledgedBy"] is None
    api.system.clock.advance(4_000)
    await api.services.alerts.observe(ev.NodeCameOnline(at=0, node_id="n1"))
    got = (await api.client.get(f"/api/alerts/{alert['id']}")).json()
    assert (got["status"], got["resolvedAt"] - got["raisedAt"]) == ("resolved", 4_000)
    assert (await api.client.get("/api/alerts?active=true")).json()["items"] == []


async def test_acknowledging_says_who_and_a_resolved_alert_answers_409(api: Api) -> None:
    alert = await fire(api)
    acked = await api.client.post(f"/api/alerts/{alert['id']}/ack", json={"by": "ann"})
    assert acked.status_code == 200 and acked.json()["acknowledgedBy"] == "ann"
    assert (await api.client.post(f"/api/alerts/{alert['id']}/ack", json={})).json()[
        "acknowledgedBy"
    ] == "ann"
    await api.services.alerts.observe(ev.NodeCameOnline(at=0, node_id="n1"))
    refused = await api.client.post(f"/api/alerts/{alert['id']}/ack", json={"by": "ann"})
    assert refused.status_code == 409
    assert (refused.json()["error"], refused.json()["fromStatus"]) == ("INVALID_TRANSITION", "resolved")


async def test_unknown_alerts_and_silences_are_404(api: Api) -> None:
    assert (await api.client.get("/api/alerts/nope")).status_code == 404
    assert (await api.client.post("/api/alerts/nope/ack", json={})).status_code == 404
    assert (await api.client.get("/api/silences/nope")).status_code == 404
    assert (await api.client.delete("/api/silences/nope")).status_code == 404


async def test_a_silence_mutes_its_alerts_until_expired_and_is_listed_with_its_state(api: Api) -> None:
    created = await api.client.post("/api/silences", json=SILENCE | {"comment": "maintenance"})
    assert created.status_code == 201
    silence = created.json()
    assert (silence["status"], silence["endsAt"] - silence["startsAt"]) == ("active", HOUR)
    alert = await fire(api)
    assert alert["silencedBy"] == silence["id"]
    listed = (await api.client.get("/api/silences?active=true")).json()
    assert [s["id"] for s in listed["items"]] == [silence["id"]]
    expired = await api.client.delete(f"/api/silences/{silence['id']}?by=bob")
    assert expired.status_code == 200 and (expired.json()["status"], expired.json()["expiredBy"]) == (
        "expired",
        "bob",
    )
    assert (await api.client.get(f"/api/alerts/{alert['id']}")).json()["silencedBy"] is None
    assert (await api.client.get("/api/silences?active=true")).json()["items"] == []
    assert (await api.client.delete(f"/api/silences/{silence['id']}")).status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (SILENCE | {"rule": "bogus"}, "rule"),
        (SILENCE | {"durationMs": 0}, "durationMs"),
        (SILENCE | {"durationMs": "1h"}, "durationMs"),
        ({k: v for k, v in SILENCE.items() if k != "createdBy"}, "createdBy"),
        (SILENCE | {"rule": "*", "subject": "*"}, "subject"),
        (SILENCE | {"until": 5}, "until"),
    ],
)
async def test_a_bad_silence_is_a_422_naming_the_field(api: Api, body: dict[str, Any], field: str) -> None:
    answer = await api.client.post("/api/silences", json=body)
    assert answer.status_code == 422, answer.text
    assert field in answer.text


async def test_a_bad_acknowledgement_is_a_422_naming_the_field(api: Api) -> None:
    alert = await fire(api)
    answer = await api.client.post(f"/api/alerts/{alert['id']}/ack", json={"by": ""})
    assert answer.status_code == 422 and "by" in answer.json()["message"]
