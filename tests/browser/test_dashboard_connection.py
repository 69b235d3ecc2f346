"""The dashboard's connection and credentials: a lost stream is shown and comes back by itself, and with
an API key configured, actions are refused with a message until the key is entered in the top bar."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import SkaldsUp, free_port


@pytest.fixture
def own_skalds(tmp_path: Path) -> Iterator[SkaldsUp]:
    up = SkaldsUp(port=free_port(), workdir=tmp_path)
    up.start()
    try:
        yield up
    finally:
        up.stop()


@pytest.fixture
def locked_skalds(tmp_path: Path) -> Iterator[SkaldsUp]:
    up = SkaldsUp(port=free_port(), workdir=tmp_path, env={"SKALDS_CONTROLLER__API_KEY": "s3cret"})
    up.start()
    try:
        yield up
    finally:
        up.stop()


async def test_a_lost_stream_is_shown_and_reconnects_by_itself(
    page: Page, own_skalds: SkaldsUp, screenshots: Path
) -> None:
    await page.goto(f"{own_skalds.base_url}/dashboard/tasks")
    connection = page.locator("#connection")
    await expect(connection).to_have_text("Live")
    await expect(page.locator("tr[data-task]")).to_have_count(2)
    await page.evaluate("window.__sameDocument = true")

    own_skalds.stop()
    await expect(connection).to_have_attribute("data-state", "reconnecting")
    await expect(page.locator("#stale")).to_be_visible()
    await page.screenshot(path=screenshots / "disconnected.png")

    own_skalds.start()  # same port, a new (empty, in-memory) system with its own example tasks
    await expect(connection).to_have_text("Live", timeout=60_000)
    await expect(page.locator("#stale")).to_be_hidden()
    await expect(page.locator("tr[data-task]")).to_have_count(2)
    await expect(page.locator("tr[data-task='example-countdown'] [data-status]")).to_have_text("Running")
    assert await page.evaluate("window.__sameDocument") is True


async def test_actions_need_the_api_key_when_one_is_set(page: Page, locked_skalds: SkaldsUp) -> None:
    await page.goto(f"{locked_skalds.base_url}/dashboard/tasks/example-countdown")
    await expect(page.locator("#connection")).to_have_text("Live")  # reads stay open without protect_reads
    await expect(page.locator("#task-status [data-status]")).to_have_text("Running")

    await page.click("#task-actions button[data-action=pause]")
    await expect(page.locator(".notice-error").first).to_contain_text("Refused (401")
    await expect(page.locator(".notice-error").first).to_contain_text("API key")

    await page.fill("#api-key", "s3cret")
    await page.click("#key-form button[type=submit]")
    await page.click("#task-actions button[data-action=pause]")
    await expect(page.locator("#task-desired")).to_have_text("pause requested")
    await expect(page.locator("#task-status [data-status]")).to_have_text("Paused")
    await page.reload()  # the key is kept in this browser
    await expect(page.locator("#api-key")).to_have_value("s3cret")
    await page.click("#task-actions button[data-action=resume]")
    await expect(page.locator("#task-status [data-status]")).to_have_text("Running")
