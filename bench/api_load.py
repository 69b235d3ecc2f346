"""HTTP API throughput and SSE fan-out latency against a real `skalds controller` (one uvicorn worker,
in-memory backend); prints a table.

- `GET /api/tasks?page=…` requests/s with 1,000 stored tasks (target >= 2,000 req/s);
- SSE delivery latency to 1,000 connected clients: from the create request to each client reading the
  task's first frame (target p99 <= 100 ms).
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
    """One keep-alive HTTP/1.1 GET on a raw connection: a load generator cheaper than the server it loads."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    return status


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


async def fan_out(port: int, clients: int) -> list[float]:
    """Raw-socket SSE clients (cheap to read), then one task created; when did each client see its frame?"""
    arrivals: list[float] = []
    connected = 0
    ready = asyncio.Event()

    async def listen() -> None:
        nonlocal connected
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /api/events/tasks?task_id=fanout HTTP/1.1\r\nHost: bench\r\n\r\n")
        await reader.readuntil(b"Connected to Skalds Task events")
        connected += 1
        if connected == clients:
            ready.set()
        await reader.readuntil(b'"fanout"')
        arrivals.append(time.perf_counter())
        writer.close()

    listeners = [asyncio.create_task(listen()) for _ in range(clients)]
    await asyncio.wait_for(ready.wait(), 120)
    await asyncio.sleep(0.5)
    body = json.dumps({"className": "BenchWorker", "id": "fanout"}).encode()
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = time.perf_counter()
    writer.write(
        b"POST /api/tasks HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await asyncio.wait_for(asyncio.gather(*listeners), 60)
    writer.close()
    return [(at - sent) * 1000 for at in arrivals]


async def main(seconds: float, clients: int) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SKALDS_LOGGING__LEVEL": "WARNING"}
    server = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measuring
        [sys.executable, "-m", "skalds", "controller", "--mode", "controller", "--port", str(port)],
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
        rate, errors = await throughput(port, seconds)
        latencies = sorted(await fan_out(port, clients))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    print(
        f"# API load — {os.cpu_count()} CPUs, one uvicorn worker, in-memory backend, client on this machine"
    )
    print()
    print("| measure | result | target |")
    print("|---|---:|---:|")
    result = f"{rate:,.0f} req/s ({errors} errors)"
    print(f"| GET /api/tasks?page=… (1,000 tasks, 32 connections) | {result} | ≥ 2,000 req/s |")
    print(f"| SSE delivery to {len(latencies)} clients, p50 | {statistics.median(latencies):.1f} ms | |")
    print(f"| SSE delivery to {len(latencies)} clients, p99 | {p99:.1f} ms | ≤ 100 ms |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--clients", type=int, default=1_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.seconds, arguments.clients))
