"""Commands the control plane sends to one node about one of its tasks (upstream's Kafka commands)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeCommand:
    """Addressed to ``node_id``; a node ignores commands for other nodes. ``version`` is the task version
    the command was issued at, so a node can drop duplicates and stale commands."""

    task_id: str
    node_id: str
    version: int
    at: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AssignTask(NodeCommand):
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelTask(NodeCommand):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseTask(NodeCommand):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeTask(NodeCommand):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateTaskAttachments(NodeCommand):
    attachments: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    attachments_version: int = 1
