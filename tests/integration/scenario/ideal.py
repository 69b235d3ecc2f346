"""The ideal scheduler: the makespan a perfect greedy scheduler would reach on the same jobs and slots. The
bench holds the real makespan to it, so it must be simple enough to trust by reading.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Job:
    release: float
    priority: int
    id: str
    duration: float


def ideal_makespan(
    jobs: Sequence[Job], slots: Mapping[str, int], kill: tuple[str, float] | None = None
) -> float:
    """The makespan of a perfect greedy scheduler: whenever a slot is free and a task is released and not
    done, the highest-priority (then oldest) task starts at once on the node with the fewest running tasks
    (ties by node id), as LEAST_TASKS does. At ``kill`` = (node, t) that node's slots vanish and the tasks
    it was running start over at once elsewhere (their work so far is lost, as with any crash). Times are
    relative to the first creation."""
    if not jobs:
        return 0.0
    releases = sorted(jobs)
    capacity = dict(slots)
    running: dict[str, list[tuple[float, Job]]] = {node: [] for node in capacity}
    queue: list[tuple[int, float, str, Job]] = []
    now, done, next_release, last_end = 0.0, 0, 0, 0.0
    kill_pending = kill is not None
    while done < len(jobs):
        candidates = [end for node in running for end, _ in running[node]]
        if next_release < len(releases):
            candidates.append(releases[next_release].release)
        if kill_pending and kill is not None:
            candidates.append(kill[1])
        if not candidates:
            raise AssertionError("ideal schedule stuck: jobs left but no slot (every node killed?)")
        now = max(now, min(candidates))
        for node, tasks in running.items():
            still = [(end, job) for end, job in tasks if end > now]
            ended = len(tasks) - len(still)
            done += ended
            if ended:
                last_end = max(last_end, now)
            running[node] = still
        if kill_pending and kill is not None and kill[1] <= now:
            kill_pending = False
            for _, job in running.pop(kill[0], []):
                heapq.heappush(queue, (-job.priority, job.release, job.id, job))
            capacity.pop(kill[0], None)
        while next_release < len(releases) and releases[next_release].release <= now:
            job = releases[next_release]
            heapq.heappush(queue, (-job.priority, job.release, job.id, job))
            next_release += 1
        while queue:
            free = [node for node in sorted(running) if len(running[node]) < capacity[node]]
            if not free:
                break
            node = min(free, key=lambda n: (len(running[n]), n))
            *_, job = heapq.heappop(queue)
            if job.duration <= 0:
                done += 1
                last_end = max(last_end, now)
                continue
            running[node].append((now + job.duration, job))
    return last_end
