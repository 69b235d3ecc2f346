"""Alerts POSTed as JSON to a URL (chat bridges, incident tools). Stdlib HTTP in a worker thread: one small
request per alert does not justify a client library. Failures are logged and retried a few times; they never
reach the monitor."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from skalds.domain.alerts import Alert
from skalds.domain.ports import NotificationChannel

log = logging.getLogger(__name__)


ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt for an alert still firing
RECEIVER = "skalds"


def rfc3339(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return ZERO_TIME
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_payload(alert: Alert) -> dict[str, Any]:
    """Alertmanager's webhook shape (version 4: ``status``, ``alerts[]`` with labels, annotations,
    ``startsAt``/``endsAt``), so receivers written for Alertmanager read it; plus our flat fields and a
    chat-ready ``text`` at the top, which the first receivers of this webhook read."""
    labels = {"alertname": alert.rule.value, "subject": alert.subject, "severity": alert.severity.value}
    annotations = {"summary": alert.message}
    status = alert.status.value
    return {
        "version": "4",
        "receiver": RECEIVER,
        "status": status,
        "groupKey": f"{alert.rule.value}:{alert.subject}",
        "truncatedAlerts": 0,
        "groupLabels": {"alertname": alert.rule.value, "subject": alert.subject},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(alert.raised_at),
                "endsAt": rfc3339(alert.resolved_at),
                "generatorURL": "",
                "fingerprint": alert.id,
            }
        ],
        "id": alert.id,
        "rule": alert.rule.value,
        "severity": alert.severity.value,
        "subject": alert.subject,
        "message": alert.message,
        "raisedAt": alert.raised_at,
        "resolvedAt": alert.resolved_at,
        "active": alert.active,
        "count": alert.count,
        "text": f"[{alert.severity.value.upper()}] {alert.message}"
        + (" (resolved)" if not alert.active else ""),
    }


class WebhookNotificationChannel(NotificationChannel):
    def __init__(
        self, url: str, *, timeout_s: float = 5.0, attempts: int = 3, backoff_s: float = 0.5
    ) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._attempts = attempts
        self._backoff_s = backoff_s

    async def notify(self, alert: Alert) -> None:
        body = json.dumps(alert_payload(alert)).encode()
        for attempt in range(1, self._attempts + 1):
            try:
                await asyncio.to_thread(self._post, body)
                return
            except (urllib.error.URLError, OSError, ValueError) as error:
                log.warning(
                    "webhook %s failed for alert %s (attempt %d): %s", self._url, alert.id, attempt, error
                )
                await asyncio.sleep(self._backoff_s * attempt)
        log.error("webhook %s gave up on alert %s", self._url, alert.id)

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(
            self._url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
            response.read()
