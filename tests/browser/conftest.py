"""Browser tests: the dashboard in Debian's headless Chromium, driven by Playwright (never its own browser
builds). ``make browser`` installs Chromium if it is missing (ci/chromium.sh) and runs these.

Every test here is marked ``browser``. Screenshots go to ``artifacts/screenshots/`` (printed at the end of
the session). Waits are for conditions, with generous timeouts; nothing asserts how long something took.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("SKALDS_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}
WAIT_MS = 30_000
START_TIMEOUT_S = 60.0

expect.set_options(timeout=WAIT_MS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.browser)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SCREENSHOTS.is_dir() and any(SCREENSHOTS.iterdir()):
        terminalreporter.write_line(f"dashboard screenshots: {SCREENSHOTS}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\ndashboard screenshots: {SCREENSHOTS}")
    return SCREENSHOTS


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `sh ci/chromium.sh` (or `make browser`)", pytrace=False)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh context per test (its own localStorage), and any page error fails the test."""
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        await context.close()
    assert not errors, f"the page raised: {errors}"


@dataclass
class SkaldsUp:
    """``python -m skalds up`` in a subprocess: API, dashboard, dispatcher, monitor and an example node."""

    port: int
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # Frames every second, not every 3: the tests see progress sooner (they wait either way).
        # The status chart's samples every 2 s, not 20, for the same reason.
        env = {
            **os.environ,
            "SKALDS_MONITOR__INTERVAL_MS": "1000",
            "SKALDS_HISTORY__SAMPLE_EVERY_MS": "2000",
            **self.env,
        }
        log = (self.workdir / "skalds-up.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "skalds", "up", "--port", str(self.port), *self.args],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until_serving(self.base_url, self.process, self.workdir / "skalds-up.log")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None


def wait_until_serving(base_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the API answers with the example node registered (a wait for a condition, not a timing)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"skalds up exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base_url}/api/skalds", timeout=2).json().get("total"):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    pytest.fail(
        f"skalds up did not serve {base_url} within {START_TIMEOUT_S:.0f}s:\n{log.read_text()[-3000:]}"
    )


@pytest.fixture(scope="module")
def skalds_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SkaldsUp]:
    """One embedded Skalds for a module's tests (they share its example tasks)."""
    up = SkaldsUp(port=free_port(), workdir=tmp_path_factory.mktemp("skalds-up"))
    up.start()
    try:
        yield up
    finally:
        up.stop()


async def agree(shown: Callable[[], Awaitable[Any]], truth: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Wait until the page shows what the API says (both re-read each time: the system keeps moving)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_MS / 1000
    while True:
        expected, actual = await truth(), await shown()
        if actual == expected:
            return actual
        if loop.time() > deadline:
            pytest.fail(f"{what}: the page shows {actual!r}, the API says {expected!r}", pytrace=False)
        await asyncio.sleep(0.25)


@pytest.fixture(scope="module")
def failing_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SkaldsUp]:
    """``skalds up`` with the test workers, one of which fails when asked to."""
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    up = SkaldsUp(
        port=free_port(),
        workdir=tmp_path_factory.mktemp("skalds-up-steady"),
        env={"PYTHONPATH": pythonpath},
        args=["--no-examples", "--in-memory", "--worker", "tests.workers:Steady"],
    )
    up.start()
    try:
        yield up
    finally:
        up.stop()
