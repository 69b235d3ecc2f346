"""What the dashboard shows of the past, from what the controller keeps: a failed task's timeline with its
error and its attempts, a finished task's progress over time, and the overview's charts of the last hour,
which move as tasks end, without a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.browser.conftest import SkaldsUp

FAILING = {"className": "Steady", "maxAttempts": 1, "attachments": {"failIn": "before"}}
FINISHING = {"className": "Steady", "attachments": {"steps": 300}}  # ~3 s of progress, then done


async def create(up: SkaldsUp, body: dict[str, Any]) -> str:
    async with httpx.AsyncClient(base_url=up.base_url, timeout=10) as client:
        response = await client.post("/api/tasks", json=body)
        response.raise_for_status()
        task_id: str = response.json()["id"]
        return task_id


async def test_a_failed_tasks_timeline_and_attempts_show_its_error(
    page: Page, failing_up: SkaldsUp, screenshots: Path
) -> None:
    task_id = await create(failing_up, FAILING)
    await page.goto(f"{failing_up.base_url}/dashboard/tasks/{task_id}")
    await expect(page.locator("#task-status [data-status]")).to_have_text("Failed")
    failed = page.locator("#status-history li[data-change=TaskFailed]")
    await expect(failed).to_contain_text("camera URL is unreachable")
    for change in ("TaskCreated", "TaskAssigned"):  # no TaskStarted when it fails before it is seen running
        await expect(page.locator(f"#status-history li[data-change={change}]")).to_have_count(1)
    attempt = page.locator("#task-attempts tr[data-attempt='1']")
    await expect(attempt).to_contain_text("embedded-node")
    await expect(attempt).to_contain_text("Failed")
    await expect(attempt).to_contain_text("camera URL is unreachable")
    await page.screenshot(path=screenshots / "task-failed-timeline.png", full_page=True)


async def test_a_tasks_progress_is_drawn_over_time(page: Page, failing_up: SkaldsUp) -> None:
    task_id = await create(failing_up, FINISHING)
    await page.goto(f"{failing_up.base_url}/dashboard/tasks/{task_id}")
    await expect(page.locator("#task-status [data-status]")).to_have_text("Finished")
    chart = page.locator("#task-progress-chart [data-chart=task-progress]")
    await expect(chart).to_be_visible()
    assert int(await chart.get_attribute("data-points") or 0) >= 1
    await expect(page.locator("#status-history li[data-change=TaskFinished]")).to_have_count(1)


async def test_the_overview_charts_count_what_ended_this_minute_live(
    page: Page, failing_up: SkaldsUp, screenshots: Path
) -> None:
    await page.goto(f"{failing_up.base_url}/dashboard")
    await expect(page.locator("#connection")).to_have_text("Live")
    bars = "[data-chart=outcomes-per-minute] g.bar"
    await expect(page.locator(bars)).to_have_count(60)
    failed = "s => [...document.querySelectorAll(s)].reduce((n, bar) => n + Number(bar.dataset.failed), 0)"
    before = await page.evaluate(failed, bars)  # summed: the failure may land in a new minute
    await create(failing_up, FAILING)  # while the page is open: the chart must move by itself
    await page.wait_for_function(f"([s, before]) => ({failed})(s) > before", arg=[bars, before])
    status_bar = page.locator("[data-chart=status-per-minute] g.bar:last-of-type")
    await expect(status_bar).not_to_have_attribute("data-total", "0")
    await expect(page.locator("[data-chart=status-per-minute] g.bar")).to_have_count(60)
    await page.screenshot(path=screenshots / "overview-history.png", full_page=True)
