"""The live stream ``/api/events/tasks`` (SSE), followed in a thread: when the API showed each status
change. It is one of the scenario's three sources, and the only one that says what the API told an operator.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any

import httpx


class LiveFeed:
    """Follows ``/api/events/tasks`` in a thread; keeps each task_status frame (every lifecycle change)
    with its arrival time (``time.time()``) and the latest status and executor of every task. Reconnects with
    ``Last-Event-ID`` so nothing is lost across a dropped connection."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.frames: list[tuple[float, dict[str, Any]]] = []
        self.state: dict[str, dict[str, Any]] = {}
        self.reconnects = 0
        self.dropped = 0
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._follow, name="live-feed", daemon=True)

    def start(self, within_s: float = 30.0) -> None:
        self._thread.start()
        if not self.connected.wait(within_s):
            raise AssertionError(f"no connection to {self._url}/api/events/tasks within {within_s:g} s")

    def close(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.close()
        self._thread.join(timeout=5)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {task_id: dict(state) for task_id, state in self.state.items()}

    def _follow(self) -> None:
        last_id: str | None = None
        with httpx.Client(base_url=self._url, timeout=httpx.Timeout(10.0, read=60.0)) as client:
            while not self._stop.is_set():
                headers = {"Last-Event-ID": last_id} if last_id else {}
                try:
                    with client.stream("GET", "/api/events/tasks", headers=headers) as response:
                        self._response = response
                        last_id = self._read(response, last_id)
                except (httpx.HTTPError, OSError, ValueError):
                    pass
                if not self._stop.is_set():
                    self.reconnects += 1
                    time.sleep(0.2)

    def _read(self, response: httpx.Response, last_id: str | None) -> str | None:
        data: list[str] = []
        frame_id: str | None = None
        for line in response.iter_lines():
            if self._stop.is_set():
                break
            if line.startswith("id:"):
                frame_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif not line and data:
                self._take(time.time(), "\n".join(data))
                data = []
                if frame_id:
                    last_id = frame_id
        return last_id

    def _take(self, arrived: float, text: str) -> None:
        frame = json.loads(text)
        kind = frame.get("type")
        if kind == "connection":
            self.connected.set()
            return
        if kind == "frames_dropped":
            self.dropped += 1
            return
        if kind != "task_status":
            return
        data = frame.get("data") or {}
        with self._lock:
            self.frames.append((arrived, frame))
            state = self.state.setdefault(frame["taskId"], {})
            state["status"] = data.get("lifecycleStatus")
            if data.get("executor"):
                state["executor"] = data["executor"]
            state["at"] = arrived
