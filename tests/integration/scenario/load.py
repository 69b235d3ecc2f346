"""The seeded load: which tasks, how long each works, its priority and the control it gets. Seeded so the
bench and the test can be rerun on the same load, and so the analysis can read the plan back from a record.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

WORKER = "bench.workers:JournalWorker"
WORKER_CLASS = "JournalWorker"


@dataclass(frozen=True, slots=True)
class Load:
    tasks: int = 400
    min_s: float = 3.0
    max_s: float = 8.0
    seed: int = 1
    update_share: float = 0.10
    pause_share: float = 0.05
    cancel_share: float = 0.05
    fail_share: float = 0.0
    act_after_s: float = 1.0  # a control goes out this long after the worker journaled its start
    pause_for_s: float = 2.0  # resume this long after the worker journaled its pause
    hold: bool = False  # tests: the worker keeps running until its control took effect
    prefix: str = "op"


@dataclass(frozen=True, slots=True)
class PlannedTask:
    id: str
    seconds: float
    priority: int
    action: str  # "", "update", "pause", "cancel", "fail"
    hold: bool

    def attachments(self, round_: int = 0) -> dict[str, Any]:
        hold = self.action if self.hold and self.action in {"update", "pause", "cancel"} else ""
        return {"seconds": self.seconds, "round": round_, "hold": hold, "fail": self.action == "fail"}


def plan_load(load: Load) -> list[PlannedTask]:
    """Seeded: the same load for the same arguments. Controls go to tasks long enough to still be running
    some seconds after the control is sent (any task when the worker holds)."""
    rng = random.Random(load.seed)
    seconds = [round(rng.uniform(load.min_s, load.max_s), 2) for _ in range(load.tasks)]
    priorities = [rng.randint(0, 10) for _ in range(load.tasks)]
    eligible = [i for i, s in enumerate(seconds) if load.hold or s >= load.act_after_s + 3.0]
    rng.shuffle(eligible)
    actions = [""] * load.tasks
    for action, share in (
        ("update", load.update_share),
        ("pause", load.pause_share),
        ("cancel", load.cancel_share),
        ("fail", load.fail_share),
    ):
        for _ in range(round(share * load.tasks)):
            if eligible:
                actions[eligible.pop()] = action
    return [
        PlannedTask(f"{load.prefix}-{i:03d}", seconds[i], priorities[i], actions[i], load.hold)
        for i in range(load.tasks)
    ]
