"""Heartbeats and the node registry in dicts, with the same expiry rules the Redis adapter gets from TTLs.

Expired entries read as absent at once and are purged lazily: on read, and by a sweep at most once per TTL.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping, Sequence

from skalds.domain.heartbeat import HeartbeatReport
from skalds.domain.nodes import Node
from skalds.domain.ports import Clock, LiveStateStore


@dataclasses.dataclass(slots=True)
class _Beats:
    history: deque[HeartbeatReport]
    written_at: int


class InMemoryLiveStateStore(LiveStateStore):
    def __init__(
        self,
        clock: Clock,
        *,
        heartbeat_ttl_ms: int = 3_600_000,
        node_ttl_ms: int = 3_600_000,
        history_limit: int = 50,
    ) -> None:
        if history_limit < 1:
            raise ValueError(
                f"history_limit must be at least 1 (the latest report is kept), got {history_limit}"
            )
        self._clock = clock
        self._heartbeat_ttl_ms = heartbeat_ttl_ms
        self._node_ttl_ms = node_ttl_ms
        self._history_limit = history_limit
        self._beats: dict[str, _Beats] = {}
        self._nodes: dict[str, Node] = {}
        self._swept_at = clock.now_ms()

    async def record_heartbeat(self, task_id: str, report: HeartbeatReport) -> HeartbeatReport:
        now = self._clock.now_ms()
        if now - self._swept_at > self._heartbeat_ttl_ms:
            self._sweep(now)
        beats = self._live_beats(task_id)
        previous = beats.history[-1] if beats is not None else None
        stored = dataclasses.replace(report, progress_changed_at=_progress_changed_at(previous, report))
        if beats is None:
            beats = self._beats[task_id] = _Beats(deque(maxlen=self._history_limit), now)
        beats.history.append(stored)
        beats.written_at = now
        return stored

    async def record_heartbeats(self, beats: Sequence[tuple[str, HeartbeatReport]]) -> list[HeartbeatReport]:
        return [await self.record_heartbeat(task_id, report) for task_id, report in beats]

    async def latest_heartbeats(self, task_ids: Sequence[str]) -> Mapping[str, HeartbeatReport]:
        oldest = self._clock.now_ms() - self._heartbeat_ttl_ms
        beats = self._beats
        return {
            task_id: found.history[-1]
            for task_id in task_ids
            if (found := beats.get(task_id)) is not None and found.written_at >= oldest
        }

    async def heartbeat_history(self, task_id: str, limit: int) -> Sequence[HeartbeatReport]:
        beats = self._live_beats(task_id)
        if beats is None or limit <= 0:
            return []
        return list(beats.history)[-limit:]

    async def forget_tasks(self, task_ids: Sequence[str]) -> None:
        for task_id in task_ids:
            self._beats.pop(task_id, None)

    async def put_node(self, node: Node) -> None:
        self._nodes[node.id] = node

    async def get_node(self, node_id: str) -> Node | None:
        node = self._nodes.get(node_id)
        if node is not None and self._expired(node):
            del self._nodes[node_id]
            return None
        return node

    async def list_nodes(self) -> Sequence[Node]:
        for node in [n for n in self._nodes.values() if self._expired(n)]:
            del self._nodes[node.id]
        return sorted(self._nodes.values(), key=lambda n: n.id)

    async def remove_node(self, node_id: str) -> None:
        self._nodes.pop(node_id, None)

    async def ping(self) -> None:
        """Memory always answers."""

    def _sweep(self, now: int) -> None:
        """Drop heartbeats of tasks nobody reads or forgets any more, so memory follows the live tasks."""
        oldest = now - self._heartbeat_ttl_ms
        for task_id in [task_id for task_id, beats in self._beats.items() if beats.written_at < oldest]:
            del self._beats[task_id]
        self._swept_at = now

    def _live_beats(self, task_id: str) -> _Beats | None:
        beats = self._beats.get(task_id)
        if beats is not None and self._clock.now_ms() - beats.written_at > self._heartbeat_ttl_ms:
            del self._beats[task_id]
            return None
        return beats

    def _expired(self, node: Node) -> bool:
        seen = node.last_heartbeat_at if node.last_heartbeat_at is not None else node.registered_at
        return self._clock.now_ms() - seen > self._node_ttl_ms


def _progress_changed_at(previous: HeartbeatReport | None, report: HeartbeatReport) -> int | None:
    """The store keeps only recent reports, so it remembers since when the progress value has held."""
    if report.progress is None:
        return None
    if (
        previous is not None
        and previous.progress == report.progress
        and previous.progress_changed_at is not None
    ):
        return previous.progress_changed_at
    return report.received_at
