"""Upstream's own prebuilt dashboard (skalds==0.3.8's bundle, unmodified) against ``skalds up
--upstream-dashboard``: what a team moving from upstream keeps seeing. Every page agrees with our API, and a
task that finishes, one cancelled from upstream's modal, one that fails and one paused each show their final
status live, without a reload, also after a client-side navigation. Screenshots go to artifacts/."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Locator, Page, expect

from tests.browser.conftest import VIEWPORT, SkaldsUp, agree, free_port
from tests.browser.upstream_bundle import upstream_bundle

ROOT = Path(__file__).resolve().parents[2]
WORKERS = ("skalds.examples:CountdownWorker", "skalds.examples:StreamWorker", "tests.workers:Steady")
NOWHERE = {"zone": "nowhere"}  # a label no node has: these tasks wait in Created, filling the pages
FILLERS = 12
PAGE_SIZE = 10  # upstream's Tasks page asks for pages of 10


@pytest.fixture(scope="module")
def upstream_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SkaldsUp]:
    args = ["--upstream-dashboard", str(upstream_bundle()), "--capacity", "8"]
    for worker in WORKERS:
        args += ["--worker", worker]
    up = SkaldsUp(
        port=free_port(),
        workdir=tmp_path_factory.mktemp("upstream-dashboard"),
        env={"PYTHONPATH": str(ROOT)},
        args=args,
    )
    up.start()
    try:
        with httpx.Client(base_url=up.base_url, timeout=10) as client:
            for n in range(FILLERS):
                body = {"className": "CountdownWorker", "id": f"waiting-{n:02d}", "requiredLabels": NOWHERE}
                client.post("/api/tasks", json=body).raise_for_status()
        yield up
    finally:
        up.stop()


@pytest.fixture
async def upstream_page(browser: Browser) -> AsyncIterator[Page]:
    """A page whose console errors fail the test, except the favicon upstream's index.html names and its
    wheel does not ship (``/vite.svg``: a 404 with upstream's own server too)."""
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    opened = await context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.location.get("url", "").endswith("/vite.svg"):
            errors.append(f"{message.text} ({message.location.get('url')})")

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        await context.close()
    assert not errors, f"upstream's page logged errors: {errors}"


async def api(up: SkaldsUp, method: str, path: str, **kwargs: Any) -> Any:
    async with httpx.AsyncClient(base_url=up.base_url, timeout=10) as client:
        response = await client.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()


async def create(up: SkaldsUp, task_id: str, class_name: str, attachments: dict[str, Any]) -> None:
    body = {"className": class_name, "id": task_id, "attachments": attachments, "maxAttempts": 1}
    await api(up, "POST", "/api/tasks", json=body)


async def status_of(up: SkaldsUp, task_id: str) -> str:
    return str((await api(up, "GET", f"/api/tasks/{task_id}"))["lifecycleStatus"])


async def constant(value: str) -> str:
    return value


def row(page: Page, task_id: str) -> Locator:
    return page.locator("tbody tr", has=page.locator("td:first-child", has_text=task_id))


async def shown_rows(page: Page) -> list[tuple[str, str]]:
    """(id, status) of each row of the Tasks table, in order."""
    rows = page.locator("tbody tr")
    found = []
    for index in range(await rows.count()):
        cells = rows.nth(index).locator("td")
        found.append(((await cells.nth(0).inner_text()).strip(), (await cells.nth(3).inner_text()).strip()))
    return found


async def api_rows(up: SkaldsUp, **query: Any) -> list[tuple[str, str]]:
    listed = await api(up, "GET", "/api/tasks/", params={"page": 1, "pageSize": PAGE_SIZE, **query})
    return [(item["id"], item["lifecycleStatus"]) for item in listed["items"]]


async def open_tasks(page: Page, up: SkaldsUp) -> None:
    await page.goto(f"{up.base_url}/dashboard/tasks")
    await expect(page.get_by_text("Live Updates")).to_be_visible()
    await expect(page.locator("tbody tr").first).to_be_visible()


async def test_the_overview_shows_what_the_summary_says(
    upstream_page: Page, upstream_up: SkaldsUp, screenshots: Path
) -> None:
    page = upstream_page
    await page.goto(f"{upstream_up.base_url}/dashboard")

    async def card(name: str) -> list[str]:
        found = page.locator(".card", has=page.get_by_text(name, exact=True))
        return [await found.locator(".text-2xl").inner_text(), await found.locator(".text-xs").inner_text()]

    async def shown() -> list[list[str]]:
        return [await card(n) for n in ("Total Skalds", "Total Tasks", "Finished Tasks", "Failed Tasks")]

    async def truth() -> list[list[str]]:
        s = await api(upstream_up, "GET", "/api/system/dashboard/summary")
        return [
            [str(s["totalSkalds"]), f"{s['onlineSkalds']} online"],
            [str(s["totalTasks"]), f"{s['runningTasks']} running"],
            [str(s["finishedTasks"]), "Successfully finished"],
            [str(s["failedTasks"]), "Need attention"],
        ]

    await agree(shown, truth, "upstream's overview cards")
    await page.screenshot(path=screenshots / "upstream-overview.png", full_page=True)


async def test_the_skalds_page_lists_our_nodes(
    upstream_page: Page, upstream_up: SkaldsUp, screenshots: Path
) -> None:
    page = upstream_page
    await page.goto(f"{upstream_up.base_url}/dashboard/skalds")
    nodes = (await api(upstream_up, "GET", "/api/skalds/"))["items"]
    rows = page.locator("tbody tr")
    await expect(rows).to_have_count(len(nodes))
    for node in nodes:
        shown = page.locator("tbody tr", has=page.get_by_text(node["id"], exact=True))
        await expect(shown).to_contain_text("Online")
        await expect(shown).to_contain_text(node["supportedTasks"][0])
    await page.screenshot(path=screenshots / "upstream-skalds.png", full_page=True)


async def test_pages_and_filters_of_the_task_list_equal_the_api(
    upstream_page: Page, upstream_up: SkaldsUp, screenshots: Path
) -> None:
    page, up = upstream_page, upstream_up
    await open_tasks(page, up)
    await agree(lambda: shown_rows(page), lambda: api_rows(up), "page 1")
    await page.get_by_role("button", name="Next").click()
    await agree(lambda: shown_rows(page), lambda: api_rows(up, page=2), "page 2")
    await page.get_by_role("button", name="Previous").click()
    status_filter, type_filter = page.locator("select").nth(1), page.locator("select").nth(0)
    await status_filter.select_option("Created")
    await agree(lambda: shown_rows(page), lambda: api_rows(up, lifecycleStatus="Created"), "Created filter")
    await status_filter.select_option("")
    await type_filter.select_option("StreamWorker")
    await agree(lambda: shown_rows(page), lambda: api_rows(up, className="StreamWorker"), "type filter")
    await type_filter.select_option("")
    await page.get_by_placeholder("Filter by Task ID").fill("waiting-0")
    await agree(lambda: shown_rows(page), lambda: api_rows(up, id="waiting-0"), "task id filter")
    await page.screenshot(path=screenshots / "upstream-tasks-filtered.png", full_page=True)


async def test_every_final_status_reaches_the_page_live_and_survives_a_navigation(
    upstream_page: Page, upstream_up: SkaldsUp, screenshots: Path
) -> None:
    page, up = upstream_page, upstream_up
    await create(up, "up-finishes", "CountdownWorker", {"seconds": 20})
    for name in ("up-cancelled", "up-fails", "up-paused"):
        await create(up, name, "Steady", {"steps": 1_000_000})
    await open_tasks(page, up)
    mine = ("up-finishes", "up-cancelled", "up-fails", "up-paused")
    for task_id in mine:
        await expect(row(page, task_id).locator("td").nth(3)).to_have_text("Running")

    await row(page, "up-cancelled").get_by_role("button", name="Details").click()
    await page.screenshot(path=screenshots / "upstream-modal.png", full_page=True)
    await page.get_by_role("button", name="Set Cancelled").click()  # upstream's page closes the modal
    await expect(page.get_by_role("button", name="Set Cancelled")).to_have_count(0)
    changes = {"up-fails": {"attachments": {"steps": 1_000_000, "failIn": "main"}}}
    await api(up, "PUT", "/api/tasks/up-fails/attachments", json=changes["up-fails"])
    await api(up, "POST", "/api/tasks/up-paused/pause")

    final = {
        "up-finishes": "Finished",
        "up-cancelled": "Cancelled",
        "up-fails": "Failed",
        "up-paused": "Paused",
    }
    for task_id, status in final.items():
        await expect(row(page, task_id).locator("td").nth(3)).to_have_text(status)  # no reload
        await agree(lambda t=task_id: status_of(up, t), lambda s=status: constant(s), task_id)  # type: ignore[misc]
    await page.screenshot(path=screenshots / "upstream-tasks-live.png", full_page=True)

    await page.get_by_role("link", name="Dashboard").first.click()
    await page.get_by_role("link", name="Tasks").first.click()  # client-side: the live state is kept
    await expect(page.locator("tbody tr").first).to_be_visible()
    for task_id, status in final.items():
        await expect(row(page, task_id).locator("td").nth(3)).to_have_text(status)
