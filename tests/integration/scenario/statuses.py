"""The API's lifecycle statuses as the scenario reads them. The driver (to know when to stop) and the
analysis (to judge the end state) must agree on what "done" means, so it is said once, here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TERMINAL = frozenset({"Finished", "Failed", "Cancelled"})
LIVE = frozenset({"Assigning", "Running", "Paused"})
OUTCOME_STATUS = {"finished": "Finished", "failed": "Failed", "cancelled": "Cancelled"}  # journal -> API


def settled(task: Mapping[str, Any] | None) -> bool:
    """Terminal for good: Finished, Cancelled, or Failed with no attempt left."""
    if task is None or task["lifecycleStatus"] not in TERMINAL:
        return False
    return task["lifecycleStatus"] != "Failed" or task["attempt"] >= task["maxAttempts"]
