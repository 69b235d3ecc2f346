"""Choosing nodes for pending tasks: eligibility, ordering and the three strategies, as pure functions.

A batch is assigned in one call that counts the load it creates as it goes, so a batch never overfills a
node. Randomness and the round-robin cursor are arguments, so the same inputs give the same plan.
"""

from __future__ import annotations

import bisect
import heapq
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from skalds.domain.heartbeat import HeartbeatPolicy
from skalds.domain.nodes import Node, NodeHealth, NodeMode, node_health
from skalds.domain.task import Task, TaskMode, TaskStatus


class DispatchStrategy(StrEnum):
    LEAST_TASKS = "LEAST_TASKS"
    ROUND_ROBIN = "ROUND_ROBIN"
    RANDOM = "RANDOM"


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceThresholds:
    """Nodes reporting usage above these percentages take no new work. None disables a check."""

    max_cpu_percent: float | None = None
    max_memory_percent: float | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    task_id: str
    node_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchPlan:
    """What to assign, why the rest waits, and the round-robin cursor to keep for the next batch."""

    assignments: tuple[Assignment, ...]
    pending: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    cursor: str | None = None


def dispatch_order(tasks: Iterable[Task]) -> list[Task]:
    """Priority high to low, then oldest first (id breaks ties so the order is total)."""
    return sorted(tasks, key=lambda t: (-t.priority, t.create_date_time, t.id))


def node_refusal(node: Node, now: int, policy: HeartbeatPolicy, thresholds: ResourceThresholds) -> str | None:
    """Why ``node`` takes no dispatched work at all right now, or None when it may."""
    health = node_health(node, now, policy)
    if health is not NodeHealth.ONLINE:
        return health.value
    if node.mode is not NodeMode.NODE:
        return f"{node.mode.value} mode"
    if node.draining:
        return "draining"
    cpu, mem = thresholds.max_cpu_percent, thresholds.max_memory_percent
    if cpu is not None and node.cpu_percent is not None and node.cpu_percent > cpu:
        return f"CPU above {cpu:g}%"
    if mem is not None and node.memory_percent is not None and node.memory_percent > mem:
        return f"memory above {mem:g}%"
    return None


def task_refusal(task: Task, node: Node) -> str | None:
    """Why ``node`` cannot run ``task`` whatever its load, or None when it can."""
    if task.class_name not in node.supported_classes:
        return f"without class {task.class_name!r}"
    for key, value in task.required_labels.items():
        if node.labels.get(key) != value:
            return f"without label {key}={value}"
    return None


def is_dispatchable(task: Task) -> bool:
    return task.lifecycle_status is TaskStatus.CREATED and task.mode is TaskMode.PASSIVE


@dataclass(slots=True)
class _Candidates:
    ids: list[str]  # sorted, for round robin
    refusals: Counter[str]
    heap: list[tuple[int, str]] | None = None  # (load when pushed, node id), for least tasks

    def least_loaded(self, load: Mapping[str, int], limit: Mapping[str, int | None]) -> str | None:
        """The free node with the fewest tasks (ties by id), in O(log n): loads only grow within a batch,
        so an entry whose load is out of date is pushed back with its current load, and a full node is
        dropped for good."""
        if self.heap is None:
            self.heap = [(load[nid], nid) for nid in self.ids]
            heapq.heapify(self.heap)
        heap = self.heap
        while heap:
            pushed, nid = heap[0]
            current, cap = load[nid], limit[nid]
            if cap is not None and current >= cap:
                heapq.heappop(heap)
            elif pushed != current:
                heapq.heapreplace(heap, (current, nid))
            else:
                heapq.heapreplace(heap, (current + 1, nid))
                return nid
        return None


def assign_batch(
    tasks: Iterable[Task],
    nodes: Iterable[Node],
    *,
    strategy: DispatchStrategy,
    now: int,
    policy: HeartbeatPolicy,
    rng: random.Random,
    cursor: str | None = None,
    loads: Mapping[str, int] | None = None,
    thresholds: ResourceThresholds = ResourceThresholds(),
) -> DispatchPlan:
    """Assign as many of ``tasks`` as eligible capacity allows.

    ``loads`` overrides each node's task count (the caller may know of assignments the node has not
    reported yet); by default it is the size of the node's inventory.
    """
    node_by_id: dict[str, Node] = {}
    refused_nodes: Counter[str] = Counter()
    known: set[str] = set()
    for node in nodes:
        known.add(node.id)
        refusal = node_refusal(node, now, policy, thresholds)
        if refusal is None:
            node_by_id[node.id] = node
        else:
            refused_nodes[refusal] += 1
    load = {nid: (loads or {}).get(nid, len(n.current_tasks)) for nid, n in node_by_id.items()}
    limit = {nid: n.capacity for nid, n in node_by_id.items()}
    groups: dict[tuple[str, tuple[tuple[str, str], ...], str | None], _Candidates] = {}
    assignments: list[Assignment] = []
    pending: dict[str, str] = {}

    for task in dispatch_order(tasks):
        if not is_dispatchable(task):
            pending[task.id] = f"not dispatchable ({task.mode.value}, {task.lifecycle_status.value})"
            continue
        pin = task.executor if task.executor in known else None
        key = (task.class_name, tuple(sorted(task.required_labels.items())), pin)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _candidates_for(task, node_by_id.values(), pin)
        if strategy is DispatchStrategy.LEAST_TASKS:
            least = group.least_loaded(load, limit)
            free: Sequence[str] = [least] if least is not None else []
        else:
            free = [nid for nid in group.ids if limit[nid] is None or load[nid] < (limit[nid] or 0)]
        if not free:
            pending[task.id] = _why_pending(group, refused_nodes, len(group.ids))
            continue
        chosen = _choose(strategy, free, load, cursor, rng)
        if strategy is DispatchStrategy.ROUND_ROBIN:
            cursor = chosen
        load[chosen] += 1
        assignments.append(Assignment(task.id, chosen))
    return DispatchPlan(assignments=tuple(assignments), pending=MappingProxyType(pending), cursor=cursor)


def _candidates_for(task: Task, nodes: Iterable[Node], pin: str | None) -> _Candidates:
    """The nodes that may take ``task``. A queued task that names a known node as its executor waits for
    that node: only upstream's clients write one before dispatch (ours never hold one while queued), and
    upstream ran such a task there only. A name no node has (a stale one in an old database) pins nothing."""
    ids: list[str] = []
    refusals: Counter[str] = Counter()
    for node in nodes:
        refusal = f"not {pin!r}, the executor the task names" if pin not in (None, node.id) else None
        refusal = refusal or task_refusal(task, node)
        if refusal is None:
            ids.append(node.id)
        else:
            refusals[refusal] += 1
    ids.sort()
    return _Candidates(ids=ids, refusals=refusals)


def _choose(
    strategy: DispatchStrategy,
    free: Sequence[str],
    load: Mapping[str, int],
    cursor: str | None,
    rng: random.Random,
) -> str:
    match strategy:
        case DispatchStrategy.LEAST_TASKS:
            return min(free, key=lambda nid: (load[nid], nid))
        case DispatchStrategy.ROUND_ROBIN:
            if cursor is None:
                return free[0]
            after = bisect.bisect_right(free, cursor)
            return free[after % len(free)]
        case DispatchStrategy.RANDOM:
            return rng.choice(free)
    raise AssertionError(f"unknown strategy {strategy}")  # pragma: no cover


def _why_pending(group: _Candidates, refused_nodes: Counter[str], full: int) -> str:
    reasons = Counter(refused_nodes)
    reasons.update(group.refusals)
    if full:
        reasons["at capacity"] += full
    if not reasons:
        return "no skald nodes are registered"
    detail = ", ".join(f"{count} {why}" for why, count in sorted(reasons.items(), key=lambda kv: -kv[1]))
    return f"no eligible node ({detail})"
