"""The dashboard against ``skalds up`` (API, dispatcher, monitor and a node running the example workers):
each page shows what the API says, and a task created on the page is seen running, progressing and
cancelled without a reload. A screenshot of each page goes to artifacts/screenshots/."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.browser.conftest import SkaldsUp, agree

STATUSES = ("Created", "Assigning", "Running", "Paused", "Finished", "Failed", "Cancelled")


async def get(up: SkaldsUp, path: str) -> Any:
    async with httpx.AsyncClient(base_url=up.base_url, timeout=10) as client:
        response = await client.get(path)
        response.raise_for_status()
        return response.json()


async def open_page(page: Page, up: SkaldsUp, path: str) -> None:
    await page.goto(f"{up.base_url}{path}")
    await expect(page.locator("#connection")).to_have_text("Live")


async def test_overview_shows_the_counts_the_api_reports(
    page: Page, skalds_up: SkaldsUp, screenshots: Path
) -> None:
    await open_page(page, skalds_up, "/dashboard")

    async def summary() -> dict[str, Any]:
        return dict(await get(skalds_up, "/api/system/dashboard/summary"))

    async def shown_counts() -> dict[str, str]:
        cards = {
            name: await page.locator(f'[data-count="{name}"]').inner_text()
            for name in ("nodes", "totalTasks", "runningTasks", "finishedTasks", "failedTasks")
        }
        rows = {s: await page.locator(f'[data-status-count="{s}"]').inner_text() for s in STATUSES}
        return cards | rows

    async def api_counts() -> dict[str, str]:
        s = await summary()
        cards = {
            "nodes": f"{s['onlineSkalds']} / {s['totalSkalds']}",
            **{k: f"{s[k]:,}" for k in ("totalTasks", "runningTasks", "finishedTasks", "failedTasks")},
        }
        return cards | {status: f"{s[f'{status.lower()}Tasks']:,}" for status in STATUSES}

    await agree(shown_counts, api_counts, "overview counts")
    await expect(page.locator('[data-card="nodes"] .badge')).to_have_text("Online")
    await expect(page.locator('[data-card="runningTasks"] .badge')).to_have_text("Running")
    await expect(page.locator("#activity li").first).to_be_visible()
    active = await get(skalds_up, "/api/alerts?active=true")
    if not active["items"]:
        await expect(page.locator("#active-alerts")).to_have_text("No active alerts")
    await page.screenshot(path=screenshots / "overview.png", full_page=True)


async def test_nodes_page_lists_the_nodes_the_api_knows(
    page: Page, skalds_up: SkaldsUp, screenshots: Path
) -> None:
    await open_page(page, skalds_up, "/dashboard/skalds")
    nodes = (await get(skalds_up, "/api/skalds"))["items"]
    rows = page.locator("#nodes-table tbody tr[data-node]")
    await expect(rows).to_have_count(len(nodes))
    for node in nodes:
        row = page.locator(f'tr[data-node="{node["id"]}"]')
        await expect(row.locator("[data-health]")).to_have_text(node["health"])
        for name in node["supportedTasks"]:
            await expect(row.locator(".chip", has_text=name)).to_be_visible()
        await expect(row.locator("time")).to_have_text("just now")  # heartbeats keep coming in live
        await expect(row.locator("[data-usage]")).to_have_text(re.compile(r"^\d+% / \d+%$"))  # measured
    await page.screenshot(path=screenshots / "nodes.png", full_page=True)


async def test_tasks_page_shows_the_api_page_and_filters(
    page: Page, skalds_up: SkaldsUp, screenshots: Path
) -> None:
    await open_page(page, skalds_up, "/dashboard/tasks")

    async def shown_ids() -> list[str]:
        return [await r.get_attribute("data-task") or "" for r in await page.locator("tr[data-task]").all()]

    async def api_ids(query: str = "") -> list[str]:
        return [t["id"] for t in (await get(skalds_up, f"/api/tasks?page=1&pageSize=20{query}"))["items"]]

    await agree(shown_ids, api_ids, "task rows")
    await page.screenshot(path=screenshots / "tasks.png", full_page=True)

    await page.select_option(".toolbar select[name=className]", "StreamWorker")
    await agree(shown_ids, lambda: api_ids("&className=StreamWorker"), "rows of class StreamWorker")
    await expect(page).to_have_url(f"{skalds_up.base_url}/dashboard/tasks?class=StreamWorker")
    await page.select_option(".toolbar select[name=className]", "")
    await page.fill(".toolbar input[name=id]", "countdown")
    await agree(shown_ids, lambda: api_ids("&id=countdown"), "rows whose id contains 'countdown'")
    await page.fill(".toolbar input[name=id]", "")
    await page.select_option(".toolbar select[name=status]", "Paused")
    await expect(page.locator("#tasks-table tbody")).to_have_text("No tasks match")


async def test_a_task_created_on_the_page_runs_progresses_and_is_cancelled_live(
    page: Page, skalds_up: SkaldsUp, screenshots: Path
) -> None:
    await open_page(page, skalds_up, "/dashboard/tasks")
    await page.click("text=New task")
    form = page.locator("#create-task")
    await form.locator("select[name=className]").select_option("CountdownWorker")
    await form.locator("input[name=id]").fill("browser-countdown")
    await form.locator("textarea[name=attachments]").fill(json.dumps({"seconds": 600}))
    await form.locator("button[type=submit]").click()

    await expect(page).to_have_url(f"{skalds_up.base_url}/dashboard/tasks/browser-countdown")
    await page.evaluate("window.__sameDocument = true")  # gone if anything below reloads the page
    await expect(page.locator("#task-status [data-status]")).to_have_text("Running")
    await expect(page.locator("#task-details")).to_contain_text("embedded-node")
    progress = page.locator("#task-progress")
    await expect(progress).not_to_have_attribute("data-progress", "")
    first = float(await progress.get_attribute("data-progress") or 0)
    await expect(progress).to_contain_text("/ 600 s")  # the countdown's own scale: seconds of 600
    await page.wait_for_function(
        "first => Number(document.querySelector('#task-progress').dataset.progress) > first", arg=first
    )
    await expect(page.locator("#heartbeats tr").first).to_be_visible()
    # its worker process, as the node measures it (a countdown mostly sleeps: its CPU may read 0%)
    await expect(page.locator("#task-usage")).to_have_text(re.compile(r"^CPU \d+% · RSS \d+\.\d MiB$"))
    # its output: the last lines at once, then live (the countdown prints every second)
    output = page.locator("#task-logs .log-line")
    await expect(output.first).to_contain_text("counting from 0 to 600 s")
    seen = await output.count()
    await page.wait_for_function(
        "seen => document.querySelectorAll('#task-logs .log-line').length > seen", arg=seen
    )
    await expect(output.last).to_contain_text("s to go")
    await page.screenshot(path=screenshots / "task.png", full_page=True)

    await page.click("#task-actions button[data-action=cancel]")
    await expect(page.locator("#task-status [data-status]")).to_have_text("Cancelled")
    await expect(page.locator("#status-history")).to_contain_text("Cancelled")
    await expect(page.locator("#task-actions button[data-action=retry]")).to_be_enabled()
    await expect(page.locator("#task-logs-state")).to_have_text("ended: Cancelled")
    assert await page.evaluate("window.__sameDocument") is True
    task = await get(skalds_up, "/api/tasks/browser-countdown")
    assert task["lifecycleStatus"] == "Cancelled"
    await page.screenshot(path=screenshots / "task-cancelled.png", full_page=True)


async def test_refusals_are_explained_where_they_happen(page: Page, skalds_up: SkaldsUp) -> None:
    await open_page(page, skalds_up, "/dashboard/tasks/example-countdown")
    editor = page.locator("#attachments-input")
    await expect(editor).to_have_value('{\n  "seconds": 120\n}')
    await editor.fill('{"seconds": 0}')
    await page.click("#attachments-form button[type=submit]")
    error = page.locator('[data-error-for="attachments"]')
    await expect(error).to_contain_text("attachments.seconds")
    await expect(page.locator(".notice-error").first).to_contain_text("Invalid (422)")
    await editor.fill("{not json")
    await page.click("#attachments-form button[type=submit]")
    await expect(error).to_contain_text("not valid JSON")
    stored = await get(skalds_up, "/api/tasks/example-countdown")
    assert stored["attachments"] == {"seconds": 120}

    await open_page(page, skalds_up, "/dashboard/tasks")
    await page.click("text=New task")
    form = page.locator("#create-task")
    await form.locator("select[name=className]").select_option("CountdownWorker")
    await form.locator("input[name=id]").fill("example-countdown")
    await form.locator("button[type=submit]").click()
    await expect(page.locator('[data-error-for="id"]')).to_contain_text("example-countdown")
    await expect(page.locator(".notice-error").first).to_contain_text("Refused (409")


async def test_alerts_page_shows_the_alerts_the_api_has(
    page: Page, skalds_up: SkaldsUp, screenshots: Path
) -> None:
    await open_page(page, skalds_up, "/dashboard/alerts")
    active = (await get(skalds_up, "/api/alerts?active=true"))["items"]
    history = (await get(skalds_up, "/api/alerts?limit=200"))["items"]
    await expect(page.locator("#active-alerts-table tbody tr[data-alert]")).to_have_count(len(active))
    await expect(page.locator("#alert-history-table tbody tr[data-alert]")).to_have_count(len(history))
    await page.screenshot(path=screenshots / "alerts.png", full_page=True)
