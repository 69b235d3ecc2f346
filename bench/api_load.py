"""HTTP API throughput and SSE fan-out latency against a real `skalds controller` (one uvicorn worker,
in-memory backend); prints a table.

- `GET /api/tasks?page=…` requests/s with 1,000 stored tasks (target >= 2,000 req/s);
- SSE delivery latency to 1,000 connected clients: from the create request to each client reading the
  task's first frame (target p99 <= 100 ms);
- page latency with large tasks stored: 100 tasks at every size limit (10,000-character name, description
  and source, 1,000 dependencies, 64 labels, ~1 MiB of attachments) beside the 1,000 small ones. A page of
  small tasks must cost what it did before they were stored (flat); a page of the large ones is shown
  with its size, since what a page costs grows with what it holds.
The load generator runs in this process on the same machine, so both numbers are lower bounds.
Run: .venv/bin/python bench/api_load.py [--seconds 5] [--clients 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.common import machine

ROUNDS = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_ready(client: httpx.AsyncClient) -> None:
    for _ in range(300):
        try:
            if (await client.get("/api/system/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the controller did not start")


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> int:
    return (await _get_sized(reader, writer, path))[0]


async def _get_sized(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
) -> tuple[int, int]:
    """One keep-alive HTTP/1.1 GET on a raw connection: a load generator cheaper than the server it loads."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    return status, length


async def page_latency(
    port: int, first_page: int, pages: int, requests: int = 200
) -> tuple[float, float, int]:
    """Sequential GETs of pages ``first_page`` .. ``first_page + pages - 1`` (20 per page) on one
    connection: p50 and p95 in ms, and the largest page in bytes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    took, sizes = [], []
    for i in range(requests):
        started = time.perf_counter()
        status, size = await _get_sized(
            reader, writer, f"/api/tasks?page={first_page + i % pages}&pageSize=20"
        )
        took.append((time.perf_counter() - started) * 1000)
        assert status == 200, status
        sizes.append(size)
    writer.close()
    took.sort()
    return statistics.median(took), took[round(0.95 * (len(took) - 1))], max(sizes)


LARGE_TASKS = 100


def large_task(i: int) -> dict[str, object]:
    """A task at every limit of the default settings (limits.*), its attachments just under 1 MiB."""
    return {
        "className": "BenchWorker",
        "id": f"large{i:03d}",
        "name": "n" * 10_000,
        "description": "d" * 10_000,
        "source": "s" * 10_000,
        "dependencies": [f"dependency-{j:04d}-{'x' * 24}" for j in range(1_000)],
        "requiredLabels": {f"label{j:02d}": "v" * 200 for j in range(64)},
        "attachments": {"frames": ["f" * 1_000] * 1_000},
    }


async def throughput(port: int, seconds: float, concurrency: int = 32) -> tuple[float, int]:
    done = 0
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(offset: int) -> None:
        nonlocal done, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        page = offset
        while time.perf_counter() < deadline:
            status = await _get(reader, writer, f"/api/tasks?page={page % 50 + 1}&pageSize=20")
            if status == 200:
                done += 1
            else:
                errors += 1
            page += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return done / (time.perf_counter() - started), errors


class _SseListener(asyncio.Protocol):
    """One SSE client as a bare protocol: it only looks for two markers in what arrives, so reading 1,000
    streams costs the load generator a few microseconds each instead of a StreamReader's buffering."""

    def __init__(self, tag: str, connected: asyncio.Future[None], arrived: asyncio.Future[float]) -> None:
        self.request = f"GET /api/events/tasks?task_id={tag} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        self.marker = f'"{tag}"'.encode()
        self.connected = connected
        self.arrived = arrived
        self.seen = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if not self.connected.done():
            self.seen += data
            if b"Connected to Skalds Task events" in self.seen:
                self.connected.set_result(None)
                self.seen = self.seen[self.seen.index(b"Connected to Skalds Task events") :]
        else:
            self.seen += data
        if self.connected.done() and not self.arrived.done() and self.marker in self.seen:
            self.arrived.set_result(time.perf_counter())


async def fan_out(port: int, clients: int, tag: str) -> list[float]:
    """Many SSE clients, then one task created: when did each client see the task's first frame?"""
    loop = asyncio.get_running_loop()
    connected = [loop.create_future() for _ in range(clients)]
    arrived = [loop.create_future() for _ in range(clients)]
    transports = []
    for i in range(clients):
        transport, _ = await loop.create_connection(
            lambda i=i: _SseListener(tag, connected[i], arrived[i]), "127.0.0.1", port
        )
        transports.append(transport)
    await asyncio.wait_for(asyncio.gather(*connected), 120)
    await asyncio.sleep(0.5)
    body = json.dumps({"className": "BenchWorker", "id": tag}).encode()
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = time.perf_counter()
    writer.write(
        b"POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    arrivals = await asyncio.wait_for(asyncio.gather(*arrived), 60)
    writer.close()
    for transport in transports:
        transport.close()
    return [(at - sent) * 1000 for at in arrivals]


async def main(seconds: float, clients: int) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SKALDS_LOGGING__LEVEL": "WARNING"}
    server = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measuring
        [
            sys.executable,
            "-m",
            "skalds",
            "controller",
            "--standalone",
            "--mode",
            "controller",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await wait_ready(client)
            for i in range(1_000):
                await client.post(
                    "/api/tasks", json={"className": "BenchWorker", "id": f"t{i:04d}", "priority": i % 11}
                )
        await throughput(port, 1)  # warm-up: the first second of a fresh process is slower
        rates = [await throughput(port, seconds) for _ in range(ROUNDS)]
        fan_outs = [sorted(await fan_out(port, clients, f"fanout{i}")) for i in range(ROUNDS)]
        small_only = await page_latency(port, 1, 50)
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            for i in range(LARGE_TASKS):
                created = await client.post("/api/tasks", json=large_task(i))
                assert created.status_code == 201, created.text[:300]
        # newest first: the large tasks fill pages 1-5, the small ones (and the fan-out tasks) follow
        large_pages = LARGE_TASKS // 20
        small_beside_large = await page_latency(port, large_pages + 2, 45)
        large = await page_latency(port, 1, large_pages, requests=50)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    errors = sum(e for _, e in rates)
    per_s = sorted(r for r, _ in rates)
    p50s = sorted(statistics.median(latencies) for latencies in fan_outs)
    p99s = sorted(_p99(latencies) for latencies in fan_outs)
    print(f"# API load — {machine()}, one uvicorn worker, in-memory backend, client on this machine")
    print(f"# median of {ROUNDS} rounds (range in brackets); {seconds:g} s per throughput round")
    print()
    print("| measure | result | target |")
    print("|---|---:|---:|")
    result = f"{per_s[ROUNDS // 2]:,.0f} req/s [{per_s[0]:,.0f} to {per_s[-1]:,.0f}], {errors} errors"
    print(f"| GET /api/tasks?page=… (1,000 tasks, 20 per page, 32 connections) | {result} | ≥ 2,000 req/s |")
    print(f"| SSE delivery to {clients} clients, p50 | {_range(p50s)} | |")
    print(f"| SSE delivery to {clients} clients, p99 | {_range(p99s)} | ≤ 100 ms |")
    print()
    print("| page of 20 (one connection, sequential) | p50 | p95 | page size |")
    print("|---|---:|---:|---:|")
    for what, (p50, p95, size) in [
        ("small tasks, 1,000 small stored", small_only),
        (f"small tasks, {LARGE_TASKS} tasks at the limits stored too", small_beside_large),
        ("tasks at the limits", large),
    ]:
        print(f"| {what} | {p50:.1f} ms | {p95:.1f} ms | {size / 1024:,.0f} KiB |")


def _p99(latencies: list[float]) -> float:
    return latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]


def _range(values: list[float]) -> str:
    return f"{values[len(values) // 2]:.1f} ms [{values[0]:.1f} to {values[-1]:.1f}]"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=1_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.seconds, arguments.clients))
