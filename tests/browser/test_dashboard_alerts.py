"""The alerts page over a failing task: it shows the alert firing, acknowledges and silences it, ends the
silence, and shows it resolved with both times once the task is gone, all without a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.browser.conftest import SkaldsUp

FAILING = {"className": "Steady", "maxAttempts": 1, "attachments": {"failIn": "before"}}


async def call(up: SkaldsUp, method: str, path: str, body: Any = None) -> Any:
    async with httpx.AsyncClient(base_url=up.base_url, timeout=10) as client:
        response = await client.request(method, path, json=body)
        response.raise_for_status()
        return response.json()


async def test_an_alert_is_acknowledged_silenced_and_seen_resolved_on_the_page(
    page: Page, failing_up: SkaldsUp, screenshots: Path
) -> None:
    await page.goto(f"{failing_up.base_url}/dashboard/alerts")
    await expect(page.locator("#connection")).to_have_text("Live")
    await expect(page.locator("#active-alerts-table")).to_contain_text("No active alerts")
    task = await call(failing_up, "POST", "/api/tasks", FAILING)

    row = page.locator("#active-alerts-table tbody tr[data-alert]", has_text=task["id"])
    await expect(row).to_contain_text("task_failed")  # the raised frame brought it, no reload
    await page.fill("#operator-name", "ann")
    await page.locator("#operator-name").dispatch_event("change")
    await row.locator("button[data-action=ack]").click()
    await expect(row).to_contain_text("ann")
    await row.locator("button[data-action=silence]").click()
    await expect(row.locator("[data-silenced]")).to_have_text("silenced")
    silence = page.locator("#silences-table tbody tr[data-status=active]", has_text=task["id"])
    await expect(silence).to_contain_text("ann")
    await page.screenshot(path=screenshots / "alerts-firing.png", full_page=True)

    active = (await call(failing_up, "GET", "/api/alerts?active=true"))["items"]
    [alert] = [a for a in active if a["rule"] == "task_failed"]  # a busy machine may add node_resources
    assert (alert["acknowledgedBy"], alert["silencedBy"] is not None) == ("ann", True)

    await silence.locator("button[data-action=expire]").click()
    ended = page.locator("#silences-table tbody tr[data-status=expired]", has_text=task["id"])
    await expect(ended).to_contain_text("ended by ann")
    await expect(row.locator("button[data-action=silence]")).to_be_visible()

    await call(failing_up, "DELETE", f"/api/tasks/{task['id']}?purge=true")
    await expect(row).to_have_count(0)
    resolved = page.locator("#alert-history-table tbody tr[data-status=resolved]", has_text=task["id"])
    await expect(resolved).to_contain_text("resolved")
    stored = await call(failing_up, "GET", f"/api/alerts/{alert['id']}")
    assert stored["status"] == "resolved" and stored["resolvedAt"] >= stored["raisedAt"]
    await page.screenshot(path=screenshots / "alerts-resolved.png", full_page=True)
