"""Create tasks and change them while they run, through the HTTP API only (standard library).

Run against a running Skalds (``make up``):  python examples/create_and_update.py [http://127.0.0.1:8000]
Creates three StreamWorker tasks, waits until they run, raises their frame rate, then cancels them.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

API = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SKALDS_API_URL", "http://127.0.0.1:8000")
HEADERS = {"Content-Type": "application/json"} | (
    {"X-API-Key": os.environ["SKALDS_API_KEY"]} if os.environ.get("SKALDS_API_KEY") else {}
)


def call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(API + path, data=data, method=method, headers=HEADERS)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as error:  # the API answers every refusal with a message
        raise SystemExit(f"{method} {path}: {error.code} {json.loads(error.read())['message']}") from None


def wait_until_running(task_id: str, within_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        task = call("GET", f"/api/tasks/{task_id}")
        if task["lifecycleStatus"] == "Running":
            return task
        time.sleep(0.5)
    raise SystemExit(f"{task_id} is not running after {within_s:.0f} s: {task['lifecycleStatus']}")


if __name__ == "__main__":
    ids = [f"camera-{n}" for n in range(1, 4)]
    for task_id in ids:
        attachments = {"rtspUrl": f"rtsp://{task_id}.local/stream", "fps": 2}
        body = {"className": "StreamWorker", "id": task_id, "attachments": attachments}
        created = call("POST", "/api/tasks", body)
        print(f"created {created['id']} ({created['lifecycleStatus']})")
    for task_id in ids:
        task = wait_until_running(task_id)
        print(f"{task_id} running on {task['executor']}")
        faster = {"attachments": {**task["attachments"], "fps": 8}}
        updated = call("PUT", f"/api/tasks/{task_id}/attachments", faster)
        print(f"{task_id}: attachments version {updated['data']['attachmentsVersion']}, fps 8")
    time.sleep(2)
    for task_id in ids:
        task = call("GET", f"/api/tasks/{task_id}")
        print(f"{task_id}: progress {task['progress']}, applied version {task['appliedAttachmentsVersion']}")
        call("POST", f"/api/tasks/{task_id}/cancel")
    print("cancelled", ", ".join(ids))
