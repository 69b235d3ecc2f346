"""What the monitor knows of nodes: their health from the registry, and from its own memory of them.

The live-state store forgets (Redis without persistence comes back empty), so the watch remembers the last
entry it saw of every node and judges one the store no longer lists from that: silent since it was last
heard of, so a node that really died still goes suspect, then offline. A node missing from the store whose
workers' last heartbeats are still there, none newer than the monitor last judged, removed itself (a node
handing its tasks back does that), and is offline at once. A node kept in memory is dropped once it is
offline and no live task names it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

from skalds.domain import events as ev
from skalds.domain.commands import NodeCommand
from skalds.domain.heartbeat import HeartbeatPolicy, HeartbeatReport, from_current_run
from skalds.domain.nodes import Node, NodeHealth, node_health
from skalds.domain.task import Task


class NodeWatch:
    def __init__(self, policy: HeartbeatPolicy) -> None:
        self._policy = policy
        self._nodes: dict[str, Node] = {}  # last entry seen per node, kept a while after the store lost it
        self._node_since: dict[str, int] = {}  # node the store does not list -> silent since, to this monitor
        self._node_health: dict[str, NodeHealth] = {}
        self._node_beats: dict[str, int] = {}

    def health(self, node_id: str) -> NodeHealth | None:
        return self._node_health.get(node_id)

    def next_change_in_ms(self, now: int) -> int:
        """How long until the silence of a node not yet offline crosses its next threshold (suspect, then
        offline) if it stays silent: the monitor looks again then, not a whole interval later."""
        policy, due = self._policy, []
        for node_id, node in self._nodes.items():
            current = self._node_health.get(node_id)
            if current is NodeHealth.OFFLINE:
                continue
            since = self._node_since.get(node_id, node.last_heartbeat_at or node.registered_at)
            after = policy.dead_after_ms if current is NodeHealth.SUSPECT else policy.suspect_after_ms
            due.append(since + after + 1 - now)
        return min(due, default=policy.dead_after_ms)

    def observe(
        self,
        nodes: Sequence[Node],
        tasks: Sequence[Task],
        stored: Mapping[str, HeartbeatReport],
        judged: Callable[[str], tuple[int, HeartbeatReport] | None],
        *,
        now: int,
        out: list[ev.DomainEvent | NodeCommand],
        paused: bool,
    ) -> Mapping[str, NodeHealth]:
        """The health of every live task's executor; events for every known node whose health changed.
        ``judged(task_id)``: the report the monitor last judged of a task (with its attempt), which tells a
        node that left from one the store lost."""
        listed = {node.id: node for node in nodes}
        by_executor: dict[str, list[Task]] = defaultdict(list)
        for task in tasks:
            by_executor[task.executor or ""].append(task)
        health = {node.id: node_health(node, now, self._policy) for node in nodes}
        left: set[str] = set()
        since: dict[str, int] = {}
        unlisted = (self._nodes.keys() | by_executor.keys()) - listed.keys() - {""}
        for node_id in sorted(unlisted):  # the store lost them, they left, or this monitor never saw them
            if self._node_health.get(node_id) is NodeHealth.OFFLINE:
                health[node_id] = NodeHealth.OFFLINE
            elif _left(by_executor.get(node_id, []), stored, judged):
                health[node_id] = NodeHealth.OFFLINE
                left.add(node_id)
            else:
                heard = self._node_since.get(node_id)
                since[node_id] = _heard_at(self._nodes.get(node_id), now, paused) if heard is None else heard
                as_heard = Node(id=node_id, last_heartbeat_at=since[node_id])
                health[node_id] = node_health(as_heard, now, self._policy)
        for node_id, current in health.items():
            node = listed.get(node_id)
            beat = node.last_heartbeat_at if node is not None else None
            if node is not None and beat is not None and self._node_beats.get(node_id) != beat:
                self._node_beats[node_id] = beat
                out.append(
                    ev.NodeHeartbeatObserved(
                        at=now,
                        node_id=node_id,
                        tasks=tuple(sorted(node.current_tasks)),
                        health=current.value,
                        cpu_percent=node.cpu_percent,
                        memory_percent=node.memory_percent,
                    )
                )
            known = node or self._nodes.get(node_id)
            if known is None or current is self._node_health.get(node_id):
                continue  # no events for executors this monitor never saw listed
            silent_for = -1 if node_id in left else known.silent_for(now)
            if current is NodeHealth.ONLINE:
                out.append(ev.NodeCameOnline(at=now, node_id=node_id))
            elif current is NodeHealth.SUSPECT:
                out.append(ev.NodeWentSuspect(at=now, node_id=node_id, silent_for_ms=silent_for))
            else:
                out.append(ev.NodeWentOffline(at=now, node_id=node_id, silent_for_ms=silent_for))
        named = by_executor.keys()
        kept = {
            node_id: node
            for node_id, node in self._nodes.items()
            if node_id not in listed and (health[node_id] is not NodeHealth.OFFLINE or node_id in named)
        }
        self._nodes = kept | listed
        self._node_since = {k: v for k, v in since.items() if k in self._nodes or k in named}
        self._node_health = {node_id: health[node_id] for node_id in self._nodes}
        self._node_beats = {k: v for k, v in self._node_beats.items() if k in self._nodes}
        return health | {"": NodeHealth.OFFLINE}  # a live task without an executor has no worker


def _left(
    mine: Sequence[Task],
    stored: Mapping[str, HeartbeatReport],
    judged: Callable[[str], tuple[int, HeartbeatReport] | None],
) -> bool:
    """Whether a node the store does not list removed itself: the store still holds its workers' last
    heartbeats, none newer than the previous cycle judged. A store that restarted empty holds none, and a
    node re-reporting after such a restart writes its workers' heartbeats just before its own entry."""
    kept = [
        (task, report)
        for task in mine
        if (report := stored.get(task.id)) is not None and from_current_run(task, report)
    ]
    return bool(kept) and all(judged(task.id) == (task.attempt, report) for task, report in kept)


def _heard_at(node: Node | None, now: int, paused: bool) -> int:
    """Since when a node the store does not list counts as silent: its last beat this monitor saw, or now
    if it never saw the node, or saw it only before a pause in its own cycles."""
    if node is None or paused:
        return now
    return node.last_heartbeat_at if node.last_heartbeat_at is not None else node.registered_at
