"""Read models for the API and dashboard: summary counts, nodes with their health, recent activity.

``ActivityLog`` keeps a bounded list of recent events fed from the event stream, so "recent activity"
costs nothing per request and never grows without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from skalds.domain import events as ev
from skalds.domain.errors import NodeNotFoundError
from skalds.domain.heartbeat import HeartbeatPolicy, HeartbeatReport
from skalds.domain.nodes import Node, NodeHealth, NodeMode, node_health
from skalds.domain.ports import Clock, EventSubscriber, LiveStateStore, TaskQuery, TaskRepository
from skalds.domain.task import LIVE, Task, TaskStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    total_nodes: int
    online_nodes: int
    node_nodes: int
    edge_nodes: int
    total_tasks: int
    by_status: Mapping[TaskStatus, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeView:
    node: Node
    health: NodeHealth
    tasks: Sequence[Task]


NEWS = (
    ev.AlertRaised,
    ev.AlertResolved,
    ev.TaskPauseNotHonoured,
    ev.TaskErrorReported,
    ev.TaskVerdictChanged,
)


class ActivityLog:
    """The most recent task and node events, newest last: changes, not the pulse. A node's heartbeat and
    its workers' reports come every second from every node; kept here they would push every lifecycle
    change out of a bounded list within seconds."""

    def __init__(self, limit: int = 200) -> None:
        self._entries: deque[ev.DomainEvent] = deque(maxlen=limit)

    def observe(self, event: ev.DomainEvent) -> None:
        if isinstance(event, ev.NodeHeartbeatObserved | ev.WorkerChangesReported):
            return
        if isinstance(event, (ev.TaskEvent, ev.NodeEvent, *NEWS)):
            self._entries.append(event)

    def recent(self, limit: int = 50) -> list[ev.DomainEvent]:
        """Newest first."""
        return list(reversed(self._entries))[:limit]

    async def run(self, subscriber: EventSubscriber) -> None:
        subscription = subscriber.events()
        try:
            async for event in subscription:
                self.observe(event)
        finally:
            await asyncio.shield(subscription.close())


class Queries:
    def __init__(
        self,
        repository: TaskRepository,
        live: LiveStateStore,
        clock: Clock,
        policy: HeartbeatPolicy,
        activity: ActivityLog,
    ) -> None:
        self._repository = repository
        self._live = live
        self._clock = clock
        self._policy = policy
        self.activity = activity

    async def summary(self) -> Summary:
        nodes = await self._live.list_nodes()
        now = self._clock.now_ms()
        by_status = await self._repository.count_by_status()
        return Summary(
            total_nodes=len(nodes),
            online_nodes=sum(node_health(n, now, self._policy) is NodeHealth.ONLINE for n in nodes),
            node_nodes=sum(n.mode is NodeMode.NODE for n in nodes),
            edge_nodes=sum(n.mode is NodeMode.EDGE for n in nodes),
            total_tasks=sum(by_status.values()),
            by_status={status: by_status.get(status, 0) for status in TaskStatus},
        )

    async def nodes(self) -> list[NodeView]:
        """Each node with the live tasks it reports running, read by id: a status query would cost a scan
        of every stored task on a server without index pushdown (FerretDB 1.x), 10 s per 100,000."""
        nodes = await self._live.list_nodes()
        stored = await self._repository.get_many(sorted({t for n in nodes for t in n.current_tasks}))
        by_executor: dict[str, list[Task]] = {}
        for task in stored.values():
            if task.is_live and task.executor is not None:
                by_executor.setdefault(task.executor, []).append(task)
        now = self._clock.now_ms()
        return [
            NodeView(node=n, health=node_health(n, now, self._policy), tasks=by_executor.get(n.id, []))
            for n in nodes
        ]

    async def node(self, node_id: str) -> NodeView:
        node = await self._live.get_node(node_id)
        if node is None:
            raise NodeNotFoundError(node_id)
        tasks = (await self._repository.list(TaskQuery(executor=node_id, statuses=LIVE, limit=None))).items
        return NodeView(node=node, health=node_health(node, self._clock.now_ms(), self._policy), tasks=tasks)

    async def heartbeat_history(self, task_id: str, limit: int = 50) -> Sequence[HeartbeatReport]:
        """Raises TaskNotFoundError for an unknown task, so the API can tell 404 from "no beats yet"."""
        await self._repository.get(task_id)
        return await self._live.heartbeat_history(task_id, limit)

    async def latest_heartbeat(self, task_id: str) -> HeartbeatReport | None:
        return (await self._live.latest_heartbeats([task_id])).get(task_id)
