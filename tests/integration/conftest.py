"""Integration tests talk to real Kafka, Redis and a MongoDB-wire server.

``make integration`` (and so ``make test`` and ``.ci/run``) starts them with ``ci/services.py run`` and
passes their addresses in ``SKALDS_KAFKA_BOOTSTRAP``, ``SKALDS_REDIS_URL`` and ``SKALDS_MONGO_URL``;
``SKALDS_SERVICES_STATE`` names the run folder of the services that script started itself, which the fault
tests need to restart one. Every test here is marked ``integration``; each uses names of its own (topic
prefix, key prefix, database), so tests never see each other's data.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES_SCRIPT = ROOT / "ci" / "services.py"
HOW_TO_RUN = "run `make integration`, which starts the services, or set it to a running service"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.integration)


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        pytest.fail(f"{name} is not set: {HOW_TO_RUN}", pytrace=False)
    return value


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return _required("SKALDS_KAFKA_BOOTSTRAP")


@pytest.fixture(scope="session")
def redis_url() -> str:
    return _required("SKALDS_REDIS_URL")


@pytest.fixture(scope="session")
def mongo_url() -> str:
    return _required("SKALDS_MONGO_URL")


@pytest.fixture
def unique() -> str:
    """A fresh name (letters and digits only, FerretDB accepts it as a database name)."""
    return "it" + uuid.uuid4().hex[:12]


@pytest.fixture
def restart_service() -> Callable[[str], None]:
    """Restart ``kafka``, ``redis`` or ``mongo`` in place (same port, same data folder).

    Skips the test when the service was not started by ``ci/services.py`` (an external service is not
    ours to restart)."""
    state = os.environ.get("SKALDS_SERVICES_STATE", "").strip()

    def restart(name: str) -> None:
        if not state:
            pytest.skip(f"{name} was not started by ci/services.py; cannot restart it")
        result = subprocess.run(
            [sys.executable, str(SERVICES_SCRIPT), "restart", name],
            env={**os.environ, "SKALDS_SERVICES_STATE": state},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if result.returncode == 3:  # the script's "not managed by me" answer
            pytest.skip(result.stdout.strip() or f"{name} is external; cannot restart it")
        assert result.returncode == 0, f"restart {name} failed:\n{result.stdout}\n{result.stderr}"

    return restart
