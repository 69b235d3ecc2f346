"""The API against its own ``/schema``, from outside: Schemathesis fuzzes a live ``skalds up`` on the
memory backends, on its default SQLite file and with its tasks in FerretDB, every operation, stateful links
on (a created task's id is fed to the operations on one task), and checks every answer: no 5xx, the status,
content type, headers and body each as the schema documents them, bad input refused, ``Allow`` as
``OPTIONS`` says.

Bounded (30 examples per operation, a fixed seed) so it runs in well under a minute per backend. Left out,
each for a reason the schema cannot carry:

- ``positive_data_acceptance``: a body can be schema-valid and still name a worker class no node offers,
  or an attachment key its class does not have: a 422 that depends on the nodes, not on the schema.
- ``use_after_free``: ``DELETE /api/tasks/{id}`` is upstream's soft delete (the task is cancelled and can
  still be read); ``?purge=true`` removes it.
- the two live streams (``/api/events/tasks|skalds``): they never end; tests/unit/api covers them.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from tests.integration.cluster import cluster_in, free_port, wait_for

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXAMPLES_PER_OPERATION = 30
SEED = 20261207


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/system/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _fuzz(settings: Mapping[str, str], logs: Path, *options: str) -> None:
    with cluster_in(settings, logs) as cluster:
        port = free_port()
        up = cluster.spawn("up", "up", "--port", str(port), *options)
        url = f"http://127.0.0.1:{port}"
        wait_for(f"skalds up answering at {url}", lambda: _healthy(url), guard=cluster.check)
        run = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{url}/schema/openapi.json",
                "--checks=all",
                "--exclude-checks=positive_data_acceptance,use_after_free",
                "--exclude-path-regex=^/api/events/(tasks|skalds)$",
                f"--max-examples={EXAMPLES_PER_OPERATION}",
                f"--seed={SEED}",
                "--generation-database=none",
                "--request-timeout=10",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            cwd=logs,  # its own cache folder goes there, not into the checkout
            timeout=600,
            check=False,
        )
        assert up.running(), up.tail()
        assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
        log = up.log.read_text(errors="replace")
        assert "unhandled error on" not in log, up.tail(200)
        assert "unexpected Skalds error" not in log, up.tail(200)


def test_the_memory_backends_answer_as_their_schema_says(tmp_path: Path) -> None:
    _fuzz({}, tmp_path, "--in-memory")


def test_the_embedded_default_answers_as_its_schema_says(tmp_path: Path) -> None:
    """``skalds up`` as a new user runs it: the tasks in a SQLite file."""
    _fuzz({}, tmp_path, "--data-dir", str(tmp_path / "data"))


def test_tasks_in_ferretdb_answer_as_their_schema_says(mongo_url: str, unique: str, tmp_path: Path) -> None:
    _fuzz(
        {
            "SKALDS_BACKENDS__REPOSITORY": "mongo",
            "SKALDS_MONGO_URL": mongo_url,
            "SKALDS_MONGO__DATABASE": unique,
        },
        tmp_path,
    )
