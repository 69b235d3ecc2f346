"""Topic names, which message goes where, and creating the topics at start-up.

Every name gets the configured prefix. Commands keep upstream's topics (``task.assign``, ``task.cancel``,
``task.update.attachment``) and add ``task.pause`` and ``task.resume``; ``taskworker.update`` also receives
upstream's ``{"attachments": ...}`` form of every attachment update, for upstream workers in a mixed
deployment (our nodes never read it). Change events go to ``skalds.task.events`` (anything about a task),
``skalds.node.events`` (node events) and ``skalds.system.events`` (alerts and the rest); task output goes to
``skalds.task.logs``; malformed messages are parked on ``skalds.dead-letter``.

Command topics get ``partitions``. The event topics and the dead-letter topic get ``event_partitions``
(default 1): every process reads all events and live views want them in publish order, which Kafka keeps
only within a partition. Partitions added to an event topic later are not read until the bus restarts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # not in its stubs

from skalds.domain.commands import (
    AssignTask,
    CancelTask,
    NodeCommand,
    PauseTask,
    ResumeTask,
    UpdateTaskAttachments,
)
from skalds.domain.errors import BackendUnavailableError
from skalds.domain.events import DomainEvent, NodeEvent, TaskHeartbeatsObserved

HEARTBEAT_BATCH_KEY = "TaskHeartbeatsObserved"
_COMMAND_TOPICS: Mapping[type[NodeCommand], str] = MappingProxyType(
    {
        AssignTask: "task.assign",
        CancelTask: "task.cancel",
        UpdateTaskAttachments: "task.update.attachment",
        PauseTask: "task.pause",
        ResumeTask: "task.resume",
    }
)


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str = ""

    def _named(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @property
    def worker_update(self) -> str:
        """Upstream's per-worker attachment topic; written for upstream workers, never read by us."""
        return self._named("taskworker.update")

    @property
    def task_events(self) -> str:
        return self._named("skalds.task.events")

    @property
    def node_events(self) -> str:
        return self._named("skalds.node.events")

    @property
    def system_events(self) -> str:
        return self._named("skalds.system.events")

    @property
    def task_logs(self) -> str:
        """Task output from the nodes, for the control plane's log keepers (``task_logs``)."""
        return self._named("skalds.task.logs")

    @property
    def dead_letter(self) -> str:
        return self._named("skalds.dead-letter")

    @property
    def commands(self) -> tuple[str, ...]:
        """The topics a node reads."""
        return tuple(self._named(name) for name in _COMMAND_TOPICS.values())

    @property
    def upstream_requests(self) -> tuple[str, ...]:
        """The command topics whose upstream-form messages the controller's upstream intake reads."""
        return tuple(self._named(_COMMAND_TOPICS[c]) for c in (AssignTask, CancelTask, UpdateTaskAttachments))

    @property
    def events(self) -> tuple[str, ...]:
        return (self.task_events, self.node_events, self.system_events)

    def for_command(self, command: NodeCommand) -> str:
        return self.for_command_class(type(command))

    def for_command_class(self, command_class: type[NodeCommand]) -> str:
        return self._named(_COMMAND_TOPICS[command_class])

    def for_event(self, event: DomainEvent) -> str:
        if isinstance(event, NodeEvent):
            return self.node_events
        if isinstance(event, TaskHeartbeatsObserved):  # about many tasks, so it has no ``task_id``
            return self.task_events
        return self.task_events if hasattr(event, "task_id") else self.system_events

    def partitions_of(self, partitions: int, event_partitions: int) -> Mapping[str, int]:
        """Every topic this bus needs, with the partition count it is created with."""
        wanted = dict.fromkeys((*self.commands, self.worker_update, self.task_logs), partitions)
        wanted.update(dict.fromkeys((*self.events, self.dead_letter), event_partitions))
        return wanted


def event_key(event: DomainEvent) -> str | None:
    """Task id, node id for node events, alert id for alerts: ordering per subject across partitions.

    Heartbeat batches share one fixed key, so they keep the monitor's cycle order on one partition (a null key
    would spread them over the partitions at random)."""
    if isinstance(event, TaskHeartbeatsObserved):
        return HEARTBEAT_BATCH_KEY
    for name in ("task_id", "node_id", "alert_id"):
        value = getattr(event, name, None)
        if isinstance(value, str):
            return value
    return None


async def ensure_topics(
    admin: AdminClient,
    wanted: Mapping[str, int],
    *,
    replication_factor: int,
    bootstrap_servers: str,
    timeout_s: float,
) -> Mapping[str, int]:
    """Create the missing topics and wait until metadata shows every partition with a leader.

    Returns the partition count of each topic as the broker has it (an existing topic keeps its own).
    Raises BackendUnavailableError naming the bootstrap servers when no broker answers within the timeout.
    """
    return await asyncio.to_thread(
        _ensure_topics_blocking, admin, dict(wanted), replication_factor, bootstrap_servers, timeout_s
    )


def _ensure_topics_blocking(
    admin: AdminClient, wanted: dict[str, int], replication_factor: int, servers: str, timeout_s: float
) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    existing = _partition_counts(admin, servers, deadline)
    missing = [
        NewTopic(name, num_partitions=count, replication_factor=replication_factor)
        for name, count in wanted.items()
        if name not in existing
    ]
    if missing:
        futures = admin.create_topics(missing, operation_timeout=timeout_s, request_timeout=timeout_s)
        for name, future in futures.items():
            _created(name, future, servers, deadline)
    while True:
        existing = _partition_counts(admin, servers, deadline)
        if all(name in existing for name in wanted):
            return {name: existing[name] for name in wanted}
        if time.monotonic() >= deadline:
            absent = sorted(set(wanted) - set(existing))
            raise BackendUnavailableError(
                "kafka", f"topics {absent} not ready at {servers} after {timeout_s}s"
            )
        time.sleep(0.05)


def _created(name: str, future: Any, servers: str, deadline: float) -> None:
    try:
        future.result(timeout=max(0.1, deadline - time.monotonic()))
    except KafkaException as error:
        kafka_error: KafkaError = error.args[0]
        if kafka_error.code() != KafkaError.TOPIC_ALREADY_EXISTS:  # another process created it first
            raise BackendUnavailableError(
                "kafka", f"cannot create {name} at {servers}: {kafka_error}"
            ) from None
    except TimeoutError:
        raise BackendUnavailableError("kafka", f"creating {name} at {servers} timed out") from None


def _partition_counts(admin: AdminClient, servers: str, deadline: float) -> dict[str, int]:
    """Topics whose every partition has a leader, with their partition counts."""
    try:
        metadata = admin.list_topics(timeout=max(0.1, deadline - time.monotonic()))
    except KafkaException as error:
        raise BackendUnavailableError("kafka", f"no broker answered at {servers}: {error.args[0]}") from None
    return {
        name: len(topic.partitions)
        for name, topic in metadata.topics.items()
        if topic.error is None and topic.partitions and all(p.leader >= 0 for p in topic.partitions.values())
    }


def assignment_of(topics: Sequence[str], counts: Mapping[str, int]) -> list[tuple[str, int]]:
    return [(topic, partition) for topic in topics for partition in range(counts[topic])]
