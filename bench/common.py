"""What the benchmark scripts share: the machine line of each table, timing calls, the services addresses."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable


def machine() -> str:
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{python}, {platform.machine()}, {os.cpu_count()} CPUs"


async def timed_ms(call: Callable[[], Awaitable[object]], repeats: int) -> list[float]:
    """Milliseconds per call, ``repeats`` calls one after another."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        await call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def service_address(variable: str, service: str) -> str:
    """The address ``ci/services.py`` passes in ``variable``, or exit saying how to get one."""
    value = os.environ.get(variable, "").strip()
    if not value:
        sys.exit(
            f"{variable} is not set: point it at a running {service}, e.g. `make bench`, or after "
            f"`ci/services.py start`, `set -a; . .services/env; set +a`"
        )
    return value
