"""1,000 tasks and 50 nodes: every table pages, and frames streaming in patch rows in place; the DOM does
not grow with the number of frames (rows only for the current page, activity and alert lists capped)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from skalds.domain import events as ev
from skalds.domain.task import TaskStatus
from tests.browser.inprocess import Served, serve

TASKS, NODES, PAGE = 1_000, 50, 20
ROUNDS = 8
COUNT_ELEMENTS = "document.getElementsByTagName('*').length"


@pytest.fixture
async def big() -> AsyncIterator[Served]:
    async for served in serve(tasks=TASKS, nodes=NODES):
        yield served


async def api_ids(big: Served, page: int, extra: str = "") -> list[str]:
    async with httpx.AsyncClient(base_url=big.base_url) as client:
        body = (await client.get(f"/api/tasks?page={page}&pageSize={PAGE}{extra}")).json()
    return [t["id"] for t in body["items"]]


async def shown_ids(page: Page, table: str = "tr[data-task]", key: str = "data-task") -> list[str]:
    return [await row.get_attribute(key) or "" for row in await page.locator(table).all()]


async def stream(page: Page, big: Served, events: Sequence[ev.DomainEvent]) -> None:
    """Publish ``events`` and wait until the page has received every frame they make."""
    seen = int(await page.evaluate("window.skalds.live.framesSeen"))
    await big.services.publisher.publish_many(events)
    await page.wait_for_function("n => window.skalds.live.framesSeen >= n", arg=seen + len(events))


def beats(task_ids: Sequence[str], at: int, progress: float) -> list[ev.DomainEvent]:
    return [
        ev.TaskHeartbeatObserved(
            at=at, task_id=t, sequence=i, progress=progress, verdict="progressing", status=TaskStatus.RUNNING
        )
        for i, t in enumerate(task_ids)
    ]


def node_beats(at: int) -> list[ev.DomainEvent]:
    return [
        ev.NodeHeartbeatObserved(at=at, node_id=f"node-{n:02d}", tasks=(), health="online")
        for n in range(NODES)
    ]


async def test_tasks_page_pages_through_1000_tasks_and_stays_bounded_under_frames(
    page: Page, big: Served, screenshots: Path
) -> None:
    await page.goto(f"{big.base_url}/dashboard/tasks")
    await expect(page.locator("#connection")).to_have_text("Live")
    await expect(page.locator(".pager-text")).to_have_text("Page 1 of 50")
    await expect(page.locator(".pager")).to_contain_text("1,000 tasks")
    on_page = await api_ids(big, 1)
    assert await shown_ids(page) == on_page

    rng = random.Random(7)
    everyone = sorted({f"scale-{t:04d}" for t in range(TASKS)} - set(on_page))
    now = big.services.clock.now_ms()
    sizes = []
    for round_ in range(ROUNDS):
        elsewhere = rng.sample(everyone, 200)
        await stream(
            page, big, beats(on_page, now, progress=5 * round_) + beats(elsewhere, now, 50) + node_beats(now)
        )
        sizes.append(await page.evaluate(COUNT_ELEMENTS))
    assert max(sizes) == sizes[0], f"the DOM grew with the frames: {sizes}"
    await expect(page.locator("tr[data-task]")).to_have_count(PAGE)
    first = page.locator(f'tr[data-task="{on_page[0]}"] .progress')
    await expect(first).to_have_attribute("data-progress", str(5 * (ROUNDS - 1)))
    await expect(first).to_contain_text(f"{5 * (ROUNDS - 1)}%")
    await page.screenshot(path=screenshots / "tasks-1000.png", full_page=True)

    await page.click("button[aria-label='next page']")
    await expect(page.locator(".pager-text")).to_have_text("Page 2 of 50")
    await expect(page.locator(f'tr[data-task="{(await api_ids(big, 2))[0]}"]')).to_be_visible()
    assert await shown_ids(page) == await api_ids(big, 2)
    await page.goto(f"{big.base_url}/dashboard/tasks?page=50")
    await expect(page.locator(".pager-text")).to_have_text("Page 50 of 50")
    await expect(page.locator("tr[data-task]")).to_have_count(PAGE)
    assert await shown_ids(page) == await api_ids(big, 50)
    await page.fill(".toolbar input[name=id]", "scale-09")
    await expect(page.locator(".pager-text")).to_have_text("Page 1 of 5")
    assert await shown_ids(page) == await api_ids(big, 1, "&id=scale-09")


async def test_nodes_page_pages_through_50_nodes_and_stays_bounded_under_frames(
    page: Page, big: Served, screenshots: Path
) -> None:
    await page.goto(f"{big.base_url}/dashboard/skalds")
    await expect(page.locator("#connection")).to_have_text("Live")
    await expect(page.locator(".pager-text")).to_have_text("Page 1 of 3")
    await expect(page.locator("tr[data-node]")).to_have_count(PAGE)
    sizes = []
    for _ in range(ROUNDS):
        await stream(page, big, node_beats(big.services.clock.now_ms()))
        sizes.append(await page.evaluate(COUNT_ELEMENTS))
    assert max(sizes) == sizes[0], f"the DOM grew with the frames: {sizes}"
    await expect(page.locator("tr[data-node='node-00'] time")).to_have_text("just now")
    await page.screenshot(path=screenshots / "nodes-50.png", full_page=True)
    await page.click("button[aria-label='next page']")
    await page.click("button[aria-label='next page']")
    await expect(page.locator(".pager-text")).to_have_text("Page 3 of 3")
    assert await shown_ids(page, "tr[data-node]", "data-node") == [f"node-{n:02d}" for n in range(40, 50)]


async def test_overview_and_alerts_keep_their_lists_capped(
    page: Page, big: Served, screenshots: Path
) -> None:
    await page.goto(f"{big.base_url}/dashboard")
    await expect(page.locator("#connection")).to_have_text("Live")
    await expect(page.locator('[data-count="totalTasks"]')).to_have_text("1,000")
    await expect(page.locator('[data-status-count="Created"]')).to_have_text("1,000")
    now = big.services.clock.now_ms()
    errors: list[Any] = [
        ev.TaskErrorReported(
            at=now, task_id=f"scale-{t:04d}", error=f"camera {t} timed out", status=TaskStatus.RUNNING
        )
        for t in range(300)
    ]
    await stream(page, big, errors)
    await expect(page.locator("#activity li")).to_have_count(30)
    await expect(page.locator("#activity li").first).to_contain_text("camera 299 timed out")
    await page.screenshot(path=screenshots / "overview-1000.png", full_page=True)

    await page.click("nav a[data-nav=alerts]")
    await expect(page.locator("#alert-history-table")).to_be_visible()
    for n in range(12):
        await big.services.alerts.observe(
            ev.NodeWentOffline(at=now, node_id=f"node-{n:02d}", silent_for_ms=31_000)
        )
    await expect(page.locator("#active-alerts-table tr[data-alert]")).to_have_count(12)
    for n in range(5):
        await big.services.alerts.observe(ev.NodeCameOnline(at=now, node_id=f"node-{n:02d}"))
    await expect(page.locator("#active-alerts-table tr[data-alert]")).to_have_count(7)
    await expect(page.locator("#alert-history-table tr.resolved")).to_have_count(5)
    await page.screenshot(path=screenshots / "alerts-scale.png", full_page=True)
