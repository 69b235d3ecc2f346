"""The webhook channel against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from skalds.adapters.webhook import WebhookNotificationChannel
from skalds.domain.alerts import Alert, AlertRule, Severity

ALERT = Alert(
    id="a1",
    rule=AlertRule.NODE_OFFLINE,
    severity=Severity.CRITICAL,
    subject="n1",
    message="node n1 offline",
    raised_at=5,
)


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


async def test_an_alert_is_posted_as_json(receiver: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = receiver
    await WebhookNotificationChannel(url).notify(ALERT)
    [payload] = received
    assert payload["rule"] == "node_offline" and payload["severity"] == "critical"
    assert (payload["subject"], payload["message"], payload["raisedAt"]) == ("n1", "node n1 offline", 5)
    assert (payload["active"], payload["resolvedAt"]) == (True, None)
    assert payload["text"] == "[CRITICAL] node n1 offline"


async def test_firing_and_resolved_are_posted_in_alertmanagers_shape(
    receiver: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = receiver
    channel = WebhookNotificationChannel(url)
    await channel.notify(ALERT)
    await channel.notify(replace(ALERT, resolved_at=60_005))
    firing, resolved = received
    assert (firing["version"], firing["status"], resolved["status"]) == ("4", "firing", "resolved")
    assert firing["groupKey"] == resolved["groupKey"] == "node_offline:n1"
    [alert] = resolved["alerts"]
    assert alert["labels"] == {"alertname": "node_offline", "subject": "n1", "severity": "critical"}
    assert alert["annotations"] == {"summary": "node n1 offline"}
    assert (alert["startsAt"], alert["endsAt"]) == ("1970-01-01T00:00:00.005Z", "1970-01-01T00:01:00.005Z")
    assert firing["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"  # Alertmanager's "not yet"
    assert alert["fingerprint"] == "a1" and resolved["text"].endswith("(resolved)")


async def test_an_unreachable_webhook_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    channel = WebhookNotificationChannel(
        "http://127.0.0.1:9/nowhere", timeout_s=0.5, attempts=2, backoff_s=0.01
    )
    await channel.notify(ALERT)
    assert "gave up on alert a1" in caplog.text
