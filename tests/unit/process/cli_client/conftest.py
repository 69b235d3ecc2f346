"""One embedded instance (``skalds up``) for all the client-command tests, with an API key required for
everything (``protect_reads``): every command also proves it sends the key, in the ``X-API-Key`` header and,
for ``watch``'s event stream, as ``?apiKey=``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from skalds.entrypoints.cli import main
from tests.unit.process.cli_client.harness import KEY, Run
from tests.unit.process.test_controller_process import ROOT, free_port
from tests.unit.process.test_embedded_up import wait_for

WORKERS = ("skalds.examples:CountdownWorker", "tests.workers:Steady", "tests.workers:Talker")


@pytest.fixture(scope="package")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SKALDS_CONTROLLER__API_KEY": KEY,
        "SKALDS_CONTROLLER__PROTECT_READS": "true",
    }
    workers = [arg for path in WORKERS for arg in ("--worker", path)]
    folder = tmp_path_factory.mktemp("skalds-up")
    command = [
        *(sys.executable, "-m", "skalds", "up", "--port", str(port), "--no-examples", *workers),
        *("--data-dir", str(folder / "data")),
    ]
    log = (folder / "up.log").open("w")  # a pipe nobody reads would fill up
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=log, text=True)
    try:

        def node_up() -> object:
            try:
                return httpx.get(f"{base}/api/skalds", headers={"X-API-Key": KEY}).json().get("total")
            except httpx.TransportError:
                return None

        wait_for(node_up, process)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def run(api: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """Commands in-process through ``main``; the API's URL and key come from the environment."""
    monkeypatch.setenv("SKALDS_API_URL", api)
    monkeypatch.setenv("SKALDS_API_KEY", KEY)

    def invoke(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return invoke
