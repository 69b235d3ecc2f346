"""Real Skalds processes on one machine, for tests/integration/test_distributed.py and the operator scenario
(tests/integration/scenario/).

Controllers and nodes are started with the real CLI (``python -m skalds controller|node``), each with a log
file of its own, and driven through the controller's HTTP API. ``Cluster.close`` stops every process it
started, and every process below them (a node's forkserver and worker processes), whatever the test did.
Processes are named by pid plus start time, so a pid the kernel reused is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

ROOT = Path(__file__).resolve().parents[2]
WORKER = "skalds.examples:CountdownWorker"
WORKER_CLASS = "CountdownWorker"
STOP_TIMEOUT_S = 20.0  # a node hands its tasks back and its workers stop on a cooperative cancel
LEFTOVER_GRACE_S = 5.0

T = TypeVar("T")


def wait_for(
    what: str,
    check: Callable[[], T | None],
    *,
    within_s: float = 60.0,
    every_s: float = 0.2,
    guard: Callable[[], None] | None = None,
) -> T:
    """Poll ``check`` until it returns something other than None or False, and return that.

    ``guard`` runs before every poll and raises to give up early (a process that died). Deadlines are
    generous on purpose: they bound a hung test, they are not a performance claim."""
    deadline = time.monotonic() + within_s
    while True:
        if guard is not None:
            guard()
        found = check()
        if found is not None and found is not False:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s:g} s: {what}")
        time.sleep(every_s)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# ---- processes, by /proc -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessId:
    """A process as pid plus kernel start time: a reused pid is a different process."""

    pid: int
    started: int

    @classmethod
    def find(cls, pid: int) -> ProcessId | None:
        """The process that has this pid now, or None when there is none."""
        stat = _stat(pid)
        return None if stat is None else cls(pid, stat[2])

    def alive(self) -> bool:
        stat = _stat(self.pid)
        return stat is not None and stat[2] == self.started and stat[0] not in "ZX"

    def command(self) -> str:
        try:
            return Path(f"/proc/{self.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
        except OSError:
            return f"pid {self.pid}"

    def kill(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) from /proc/<pid>/stat, or None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name, in parentheses, may contain spaces
    return fields[0], int(fields[1]), int(fields[19])  # fields 3, 4 and 22 of proc(5)


def descendants(pid: int) -> list[ProcessId]:
    """Every process below ``pid`` right now (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    started: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat is not None:
            children.setdefault(stat[1], []).append(int(entry.name))
            started[int(entry.name)] = stat[2]
    found: list[ProcessId] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(ProcessId(child, started[child]))
        todo.extend(children.get(child, []))
    return found


@dataclass(slots=True)
class SkaldsProcess:
    """One ``python -m skalds ...`` process and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    below: set[ProcessId] = field(default_factory=set)  # every descendant seen so far, to reap at the end
    stopping_since: float | None = None
    killed_at: float | None = None  # time.time() just before ``sigkill`` sent the signal

    def running(self) -> bool:
        return self.popen.poll() is None

    def descendants(self) -> list[ProcessId]:
        found = descendants(self.popen.pid) if self.running() else []
        self.below.update(found)
        return found

    def sigkill(self) -> list[ProcessId]:
        """SIGKILL this process alone, as a crash would; returns what ran below it just before."""
        below = self.descendants()
        self.killed_at = time.time()
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)
        return below

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM), as an operator would; ``finish`` waits for it."""
        self.descendants()
        if self.running():
            self.stopping_since = time.monotonic()
            self.popen.send_signal(signal.SIGTERM)

    def finish(self) -> str:
        """Wait for it to exit after ``terminate``, SIGKILL it if it takes too long, then SIGKILL whatever
        it left behind; returns how it went, for the log."""
        how = "had exited"
        if self.stopping_since is not None:
            try:
                self.popen.wait(timeout=max(0.0, self.stopping_since + STOP_TIMEOUT_S - time.monotonic()))
                how = f"stopped {time.monotonic() - self.stopping_since:.1f} s after SIGTERM"
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)
                how = f"still running {STOP_TIMEOUT_S:g} s after SIGTERM: SIGKILLed"
        # its forkserver and resource tracker exit once they see it gone; give them a moment
        with contextlib.suppress(AssertionError):
            wait_for("", lambda: not any(p.alive() for p in self.below), within_s=LEFTOVER_GRACE_S)
        left = [p for p in self.below if p.alive()]
        names = [p.command() for p in left]
        for process in left:
            process.kill()
        return how + (f"; SIGKILLed what it left behind: {names}" if left else "")

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass(slots=True)
class Controller:
    process: SkaldsProcess
    url: str
    api: httpx.Client

    def status(self) -> dict[str, Any]:
        response = self.api.get("/api/system/status")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def dispatcher(self) -> dict[str, Any]:
        """The dispatcher component of ``/api/system/status``: running, cycles, assigned, lost."""
        [component] = [c for c in self.status()["components"] if c["name"] == "Dispatcher"]
        return {"running": component["running"], **component["details"]}

    def dispatching(self) -> bool:
        """Whether it answers and its dispatcher loop runs."""
        try:
            return bool(self.dispatcher()["running"])
        except httpx.HTTPError:
            return False


def backends_env(kafka_bootstrap: str, redis_url: str, mongo_url: str, name: str) -> dict[str, str]:
    """Settings for the real backends, under names of the test's own (topics, consumer groups, keys and
    database), so tests sharing one set of services never see each other's work."""
    return {
        "SKALDS_BACKENDS__EVENT_BUS": "kafka",
        "SKALDS_BACKENDS__LIVE_STATE": "redis",
        "SKALDS_BACKENDS__REPOSITORY": "mongo",
        "SKALDS_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "SKALDS_REDIS_URL": redis_url,
        "SKALDS_MONGO_URL": mongo_url,
        "SKALDS_KAFKA__TOPIC_PREFIX": f"{name}.",
        "SKALDS_KAFKA__CONSUMER_GROUP_PREFIX": name,
        "SKALDS_REDIS__KEY_PREFIX": f"{name}:",
        "SKALDS_MONGO__DATABASE": name,
        "PYTHONUNBUFFERED": "1",
    }


def process_env(settings: Mapping[str, str], logs: Path) -> dict[str, str]:
    """What Skalds processes of a cluster get: ``settings`` over this process's environment (without its
    own ``SKALDS_`` settings), with log files under ``logs/logs``."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("SKALDS_")}
    return inherited | dict(settings) | {"SKALDS_LOGGING__PATH": str(logs / "logs")}


@contextlib.contextmanager
def cluster_in(settings: Mapping[str, str], logs: Path) -> Iterator[Cluster]:
    """A Cluster on ``process_env(settings, logs)``; every process is stopped on the way out."""
    started = Cluster(process_env(settings, logs), logs)
    try:
        yield started
    finally:
        started.close()


def cluster_fixture(settings: Callable[[str, str, str, str], Mapping[str, str]]) -> Any:
    """A ``cluster`` fixture for a test module: ``settings(kafka, redis, mongo, unique_name)`` says what
    its processes get; each test has a log folder of its own."""

    @pytest.fixture
    def cluster(
        kafka_bootstrap: str,
        redis_url: str,
        mongo_url: str,
        unique: str,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[Cluster]:
        chosen = settings(kafka_bootstrap, redis_url, mongo_url, unique)
        with cluster_in(chosen, tmp_path_factory.mktemp(unique)) as started:
            yield started

    return cluster


class Cluster:
    """Processes sharing one set of backends (the environment ``env``), stopped together by ``close``."""

    def __init__(self, env: Mapping[str, str], logs: Path) -> None:
        self.env = dict(env)
        self.logs = logs
        self.processes: list[SkaldsProcess] = []
        self._clients: list[httpx.Client] = []
        self._expected_dead: set[str] = set()
        self._controllers: set[str] = set()

    def spawn(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> SkaldsProcess:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "skalds", *args],
                cwd=ROOT,
                env={**self.env, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        process = SkaldsProcess(name=name, popen=popen, log=log)
        self.processes.append(process)
        return process

    def controller(
        self, name: str = "controller", *, mode: str = "dispatcher", env: Mapping[str, str] | None = None
    ) -> Controller:
        """Start ``skalds controller`` on a free port; returns at once (see ``wait_ready``)."""
        port = free_port()
        process = self.spawn(name, "controller", "--mode", mode, "--port", str(port), env=env)
        self._controllers.add(name)
        url = f"http://127.0.0.1:{port}"
        client = httpx.Client(base_url=url, timeout=10.0)
        self._clients.append(client)
        return Controller(process=process, url=url, api=client)

    def wait_ready(self, controller: Controller) -> None:
        """Until the controller answers and its dispatcher loop runs."""
        wait_for(
            f"{controller.process.name} dispatching at {controller.url}",
            controller.dispatching,
            guard=self.check,
        )

    def node(
        self, node_id: str, *, env: Mapping[str, str] | None = None, worker: str = WORKER
    ) -> SkaldsProcess:
        """A ``skalds node``; unbounded unless ``env`` sets ``SKALDS_NODE__CAPACITY``, because these tests
        count tasks per node and strategy, not slots (the bounded default is tested in tests/unit/process)."""
        env = {"SKALDS_NODE__CAPACITY": "unlimited", **(env or {})}
        return self.spawn(node_id, "node", "--id", node_id, "--worker", worker, env=env)

    def skalds_origin(self) -> Path:
        """The ``skalds`` package the processes it starts import (cwd, environment and interpreter as
        theirs): which checkout is under test."""
        found = subprocess.run(
            [sys.executable, "-c", "import skalds; print(skalds.__file__)"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return Path(found.stdout.strip()).resolve().parent

    def wait_online(self, controller: Controller, *node_ids: str) -> None:
        def online() -> bool:
            nodes = {n["id"]: n["health"] for n in controller.api.get("/api/skalds").json()["items"]}
            return all(nodes.get(node_id) == "online" for node_id in node_ids)

        wait_for(f"nodes {', '.join(node_ids)} online", online, guard=self.check)

    def expect_dead(self, process: SkaldsProcess) -> None:
        self._expected_dead.add(process.name)

    def check(self) -> None:
        """Fail at once, with its log, when a process exits that should be running."""
        for process in self.processes:
            if process.name not in self._expected_dead and not process.running():
                raise AssertionError(
                    f"{process.name} exited with code {process.popen.returncode}:\n{process.tail()}"
                )
        for process in self.processes:
            process.descendants()  # remember worker processes, so close() reaps any left behind

    def close(self) -> None:
        """Nodes first (their workers stop), then controllers; each gets SIGTERM, then SIGKILL."""
        for client in self._clients:
            client.close()
        nodes = [p for p in self.processes if p.name not in self._controllers]
        controllers = [p for p in self.processes if p.name in self._controllers]
        outcomes: dict[str, str] = {}
        for group in (nodes, controllers):
            for process in group:
                process.terminate()
            for process in group:
                try:
                    outcomes[process.name] = process.finish()
                except Exception as error:  # stop the others anyway
                    outcomes[process.name] = f"stopping failed: {error!r}"
        for process in self.processes:  # pytest shows this output only for a failed test
            how = outcomes.get(process.name, "not stopped")
            print(f"---- {process.name}: exit {process.popen.returncode}, {how}; {process.log}")
            print(process.tail())


# ---- the HTTP API ------------------------------------------------------------------------------------


def create_task(api: httpx.Client, task_id: str, seconds: int = 600) -> None:
    response = api.post(
        "/api/tasks", json={"className": WORKER_CLASS, "id": task_id, "attachments": {"seconds": seconds}}
    )
    assert response.status_code == 201, response.text


def all_tasks(api: httpx.Client) -> dict[str, dict[str, Any]]:
    """Every task by id, read page by page."""
    found: dict[str, dict[str, Any]] = {}
    page = 1
    while True:
        body = api.get("/api/tasks", params={"page": page, "pageSize": 100}).json()
        found.update((item["id"], item) for item in body["items"])
        if not body["items"] or len(found) >= body["total"]:
            return found
        page += 1


def heartbeat_history(api: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    """The task's stored heartbeat reports, oldest first."""
    response = api.get(f"/api/tasks/{task_id}/heartbeat", params={"limit": 500})
    response.raise_for_status()
    history: list[dict[str, Any]] = response.json()["heartbeatHistory"]
    return history


# ---- Kafka, as evidence ------------------------------------------------------------------------------


def read_all(bootstrap: str, topic: str, *, timeout_s: float = 30.0) -> list[bytes]:
    """Every message on every partition of ``topic`` up to its end now, read with a throwaway consumer."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"evidence-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        ends: dict[int, int] = {}
        for partition in metadata.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high > low:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in ends])
        values: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while ends:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{topic}: partitions {sorted(ends)} not read to the end in {timeout_s} s"
                )
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                raise KafkaException(message.error())
            partition, offset = message.partition(), message.offset()
            if partition not in ends or offset is None or offset >= ends[partition]:
                continue  # written after we looked
            values.append(message.value() or b"")
            if offset + 1 >= ends[partition]:
                del ends[partition]
        return values
    finally:
        consumer.close()
