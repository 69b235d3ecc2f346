"""Skald nodes: where tasks run, what they can run, and whether they are still there."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from skalds.domain.errors import ValidationError
from skalds.domain.heartbeat import HeartbeatPolicy


class NodeMode(StrEnum):
    """Upstream's skald modes: only ``node`` takes dispatched work."""

    NODE = "node"
    EDGE = "edge"
    SINGLE_PROCESS = "single_process"


class NodeHealth(StrEnum):
    ONLINE = "online"
    SUSPECT = "suspect"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """A skald as last reported by itself.

    ``capacity`` None means no limit. ``cpu_percent`` / ``memory_percent`` are the node's own latest
    readings (0-100), used for resource-aware dispatch. A ``draining`` node keeps its tasks but takes no
    new ones.
    """

    id: str
    mode: NodeMode = NodeMode.NODE
    supported_classes: frozenset[str] = frozenset()
    current_tasks: frozenset[str] = frozenset()
    capacity: int | None = None
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    registered_at: int = 0
    last_heartbeat_at: int | None = None
    cpu_percent: float | None = None
    memory_percent: float | None = None
    draining: bool = False

    def __post_init__(self) -> None:
        if not self.id or not self.id.strip():
            raise ValidationError("node.id", "must be a non-empty string")
        if self.capacity is not None and self.capacity < 0:
            raise ValidationError("node.capacity", f"must be >= 0 or null, got {self.capacity}")
        object.__setattr__(self, "supported_classes", frozenset(self.supported_classes))
        object.__setattr__(self, "current_tasks", frozenset(self.current_tasks))
        if not isinstance(self.labels, MappingProxyType):
            object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))

    def silent_for(self, now: int) -> int:
        seen = self.last_heartbeat_at if self.last_heartbeat_at is not None else self.registered_at
        return max(0, now - seen)


def node_health(node: Node, now: int, policy: HeartbeatPolicy) -> NodeHealth:
    """Online, suspect or offline by the same silence thresholds as task heartbeats."""
    silence = node.silent_for(now)
    if silence > policy.dead_after_ms:
        return NodeHealth.OFFLINE
    if silence > policy.suspect_after_ms:
        return NodeHealth.SUSPECT
    return NodeHealth.ONLINE
