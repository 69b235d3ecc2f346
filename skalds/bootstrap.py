"""The composition root: the only module that names concrete adapters.

Everything is built from validated settings; nothing is created at import time. One Selector per port picks
the backend named in ``settings.backends``; ``start`` resolves every service once and returns plain objects.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dependency_injector import containers, providers

from skalds.adapters.catalog import PydanticWorkerCatalog
from skalds.adapters.edge_yaml import EdgeYamlError, load_edge_tasks
from skalds.adapters.kafka.event_bus import KafkaEventBus, kafka_event_bus
from skalds.adapters.logs import configure as configure_logs
from skalds.adapters.memory.checkpoints import InMemoryCheckpointStore
from skalds.adapters.memory.event_bus import InMemoryEventBus
from skalds.adapters.memory.live_state import InMemoryLiveStateStore
from skalds.adapters.memory.notifications import InMemoryNotificationChannel
from skalds.adapters.memory.repository import InMemoryTaskRepository
from skalds.adapters.memory.supervisor import InProcessWorkerSupervisor, WorkerFunction
from skalds.adapters.memory.task_history import InMemoryTaskHistoryStore
from skalds.adapters.memory.task_logs import InMemoryTaskLogStore
from skalds.adapters.mongo.repository import mongo_task_repository
from skalds.adapters.process.child import load_worker_class
from skalds.adapters.process.supervisor import ProcessWorkerSupervisor
from skalds.adapters.psutil_meter import PsutilResourceMeter
from skalds.adapters.redis.live_state import RedisLiveStateStore, redis_live_state_store
from skalds.adapters.redis.task_history import RedisTaskHistoryStore, redis_task_history_store
from skalds.adapters.redis.task_logs import RedisTaskLogStore, redis_task_log_store
from skalds.adapters.sqlite.repository import sqlite_task_repository
from skalds.adapters.system import SystemClock, Uuid4IdGenerator
from skalds.adapters.webhook import WebhookNotificationChannel
from skalds.application.alerts import AlertService
from skalds.application.checkpoints import CheckpointService
from skalds.application.dispatching import Dispatcher
from skalds.application.edge_adoption import EdgeTask
from skalds.application.monitoring import Monitor
from skalds.application.node_runtime import NodeIdentity, NodeRuntime
from skalds.application.output_shipping import OutputShipper
from skalds.application.queries import ActivityLog, Queries
from skalds.application.reconciling import ReconcileRules
from skalds.application.task_history import HistoryKeeper, TaskHistoryService
from skalds.application.task_logs import LogKeeper, TaskLogService
from skalds.application.tasks import TaskService
from skalds.application.upstream_intake import UpstreamIntake
from skalds.config import Settings, SettingsError, ignored_upstream_names
from skalds.domain.alerts import AlertThresholds
from skalds.domain.ports import (
    CheckpointStore,
    Clock,
    EventPublisher,
    EventSubscriber,
    IdGenerator,
    LiveStateStore,
    LogShipper,
    NotificationChannel,
    ResourceMeter,
    TaskHistoryStore,
    TaskLogStore,
    TaskRepository,
    UpstreamRequestSource,
    WorkerSupervisor,
)

log = logging.getLogger(__name__)

AVAILABLE_BACKENDS: Mapping[str, frozenset[str]] = {
    "repository": frozenset({"memory", "mongo", "sqlite"}),
    "live_state": frozenset({"memory", "redis"}),
    "event_bus": frozenset({"memory", "kafka"}),
}
"""Backends this build can wire."""


def _alert_thresholds(settings: Settings) -> AlertThresholds:
    a = settings.alerts
    return AlertThresholds(
        failure_rate=a.failure_rate,
        failure_window_ms=a.failure_window_ms,
        failure_min_samples=a.failure_min_samples,
        max_cpu_percent=a.max_cpu_percent,
        max_memory_percent=a.max_memory_percent,
    )


def _notification_channels(settings: Settings) -> list[NotificationChannel]:
    """The in-memory history always; a webhook when ``alerts.webhook_url`` is set."""
    channels: list[NotificationChannel] = [InMemoryNotificationChannel()]
    if settings.alerts.webhook_url:
        channels.append(WebhookNotificationChannel(settings.alerts.webhook_url))
    return channels


def _reconcile_rules(settings: Settings) -> ReconcileRules:
    return ReconcileRules(
        retry=settings.retry.policy(),
        offline_node_policy=settings.dispatch.offline_node_policy,
        assign_timeout_ms=settings.dispatch.assign_timeout_ms,
    )


class Container(containers.DeclarativeContainer):
    settings: providers.Dependency[Settings] = providers.Dependency(instance_of=Settings)
    backends = providers.Callable(lambda s: s.backends, settings)

    clock: providers.Provider[Clock] = providers.Singleton(SystemClock)
    ids: providers.Provider[IdGenerator] = providers.Singleton(Uuid4IdGenerator)
    rng = providers.Singleton(random.Random)
    heartbeat_policy = providers.Singleton(lambda s: s.heartbeat.policy(), settings)

    repository: providers.Provider[TaskRepository] = providers.Selector(
        providers.Callable(lambda b: str(b.repository), backends),
        memory=providers.Singleton(InMemoryTaskRepository),
        mongo=providers.Resource(
            mongo_task_repository,
            providers.Callable(lambda s: s.mongo.url, settings),
            database=providers.Callable(lambda s: s.mongo.database, settings),
            collection=providers.Callable(lambda s: s.mongo.collection, settings),
            server_selection_timeout_ms=providers.Callable(
                lambda s: s.mongo.server_selection_timeout_ms, settings
            ),
            compare_and_set=providers.Callable(lambda s: s.mongo.compare_and_set, settings),
        ),
        sqlite=providers.Resource(
            sqlite_task_repository, providers.Callable(lambda s: s.sqlite.path, settings)
        ),
    )
    # beside the tasks, as durable as they are: the repository adapter's own store, or a dict in memory
    checkpoints: providers.Provider[CheckpointStore] = providers.Selector(
        providers.Callable(lambda b: str(b.repository), backends),
        memory=providers.Singleton(InMemoryCheckpointStore),
        mongo=providers.Callable(lambda repository: repository.checkpoints, repository),
        sqlite=providers.Callable(lambda repository: repository.checkpoints, repository),
    )
    live_state: providers.Provider[LiveStateStore] = providers.Selector(
        providers.Callable(lambda b: str(b.live_state), backends),
        memory=providers.Singleton(
            InMemoryLiveStateStore,
            clock,
            heartbeat_ttl_ms=providers.Callable(lambda s: s.redis.heartbeat_ttl_ms, settings),
            node_ttl_ms=providers.Callable(lambda s: s.redis.node_ttl_ms, settings),
            history_limit=providers.Callable(lambda s: s.redis.heartbeat_history, settings),
        ),
        redis=providers.Resource(
            redis_live_state_store,
            providers.Factory(
                RedisLiveStateStore,
                providers.Callable(lambda s: s.redis.url, settings),
                clock,
                password=providers.Callable(
                    lambda s: s.redis.password.get_secret_value() if s.redis.password else None, settings
                ),
                key_prefix=providers.Callable(lambda s: s.redis.key_prefix, settings),
                heartbeat_ttl_ms=providers.Callable(lambda s: s.redis.heartbeat_ttl_ms, settings),
                node_ttl_ms=providers.Callable(lambda s: s.redis.node_ttl_ms, settings),
                history_limit=providers.Callable(lambda s: s.redis.heartbeat_history, settings),
            ),
        ),
    )
    # live state, like the heartbeats: Redis streams, or a bounded buffer in this process
    task_log_store: providers.Provider[TaskLogStore] = providers.Selector(
        providers.Callable(lambda b: str(b.live_state), backends),
        memory=providers.Singleton(
            InMemoryTaskLogStore,
            lines_per_attempt=providers.Callable(lambda s: s.task_logs.lines_per_attempt, settings),
        ),
        redis=providers.Resource(
            redis_task_log_store,
            providers.Factory(
                RedisTaskLogStore,
                providers.Callable(lambda s: s.redis.url, settings),
                password=providers.Callable(
                    lambda s: s.redis.password.get_secret_value() if s.redis.password else None, settings
                ),
                key_prefix=providers.Callable(lambda s: s.redis.key_prefix, settings),
                lines_per_attempt=providers.Callable(lambda s: s.task_logs.lines_per_attempt, settings),
                retention_ms=providers.Callable(lambda s: s.task_logs.retention_ms, settings),
            ),
        ),
    )
    task_history_store: providers.Provider[TaskHistoryStore] = providers.Selector(
        providers.Callable(lambda b: str(b.live_state), backends),
        memory=providers.Singleton(
            InMemoryTaskHistoryStore,
            changes_per_task=providers.Callable(lambda s: s.history.changes_per_task, settings),
            points_per_task=providers.Callable(lambda s: s.history.progress_points_per_task, settings),
            minutes_kept=providers.Callable(lambda s: s.history.minutes_kept, settings),
        ),
        redis=providers.Resource(
            redis_task_history_store,
            providers.Factory(
                RedisTaskHistoryStore,
                providers.Callable(lambda s: s.redis.url, settings),
                password=providers.Callable(
                    lambda s: s.redis.password.get_secret_value() if s.redis.password else None, settings
                ),
                key_prefix=providers.Callable(lambda s: s.redis.key_prefix, settings),
                changes_per_task=providers.Callable(lambda s: s.history.changes_per_task, settings),
                points_per_task=providers.Callable(lambda s: s.history.progress_points_per_task, settings),
                retention_ms=providers.Callable(lambda s: s.history.retention_ms, settings),
                minutes_kept=providers.Callable(lambda s: s.history.minutes_kept, settings),
            ),
        ),
    )
    event_bus = providers.Selector(
        providers.Callable(lambda b: str(b.event_bus), backends),
        memory=providers.Singleton(InMemoryEventBus),
        kafka=providers.Resource(
            kafka_event_bus,
            providers.Factory(
                KafkaEventBus,
                bootstrap_servers=providers.Callable(lambda s: s.kafka.bootstrap_servers, settings),
                topic_prefix=providers.Callable(lambda s: s.kafka.topic_prefix, settings),
                partitions=providers.Callable(lambda s: s.kafka.partitions, settings),
                event_partitions=providers.Callable(lambda s: s.kafka.event_partitions, settings),
                replication_factor=providers.Callable(lambda s: s.kafka.replication_factor, settings),
                client_id=providers.Callable(lambda s: s.kafka.client_id, settings),
                consumer_group_prefix=providers.Callable(lambda s: s.kafka.consumer_group_prefix, settings),
                client_config=providers.Callable(lambda s: s.kafka.client_properties(), settings),
            ),
        ),
    )
    catalog = providers.Singleton(PydanticWorkerCatalog)
    notification_channels = providers.Singleton(_notification_channels, settings)

    task_checkpoints = providers.Singleton(CheckpointService, repository, checkpoints)
    tasks = providers.Singleton(
        TaskService,
        repository,
        event_bus,
        clock,
        ids,
        catalog,
        default_max_attempts=providers.Callable(lambda s: s.dispatch.default_max_attempts, settings),
        limits=providers.Callable(lambda s: s.limits.drafts(), settings),
        checkpoints=checkpoints,
        logs=task_log_store,
    )
    log_keeper = providers.Singleton(LogKeeper, task_log_store)
    task_logs = providers.Singleton(TaskLogService, repository, task_log_store)
    history_keeper = providers.Singleton(
        HistoryKeeper,
        task_history_store,
        repository,
        clock,
        progress_every_ms=providers.Callable(lambda s: s.history.progress_every_ms, settings),
    )
    task_history = providers.Singleton(
        TaskHistoryService,
        repository,
        task_history_store,
        clock,
        minutes_kept=providers.Callable(lambda s: s.history.minutes_kept, settings),
    )
    dispatcher = providers.Singleton(
        Dispatcher,
        repository,
        live_state,
        event_bus,
        clock,
        strategy=providers.Callable(lambda s: s.dispatch.strategy, settings),
        policy=heartbeat_policy,
        rng=rng,
        thresholds=providers.Callable(lambda s: s.dispatch.thresholds(), settings),
        batch_size=providers.Callable(lambda s: s.dispatch.batch_size, settings),
    )
    monitor = providers.Singleton(
        Monitor,
        repository,
        live_state,
        event_bus,
        clock,
        policy=heartbeat_policy,
        rules=providers.Callable(_reconcile_rules, settings),
        cancel_grace_ms=providers.Callable(lambda s: s.monitor.cancel_grace_ms, settings),
        pause_grace_ms=providers.Callable(lambda s: s.monitor.pause_grace_ms, settings),
        subscriber=event_bus,
        resync_every_ms=providers.Callable(lambda s: s.monitor.resync_ms, settings),
    )
    upstream_intake = providers.Singleton(UpstreamIntake, tasks, dispatcher)
    activity = providers.Singleton(ActivityLog)
    queries = providers.Singleton(Queries, repository, live_state, clock, heartbeat_policy, activity)
    alerts = providers.Singleton(
        AlertService,
        event_bus,
        live_state,
        clock,
        ids,
        notification_channels,
        thresholds=providers.Callable(_alert_thresholds, settings),
        history_limit=providers.Callable(lambda s: s.alerts.history_limit, settings),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """Everything an entrypoint needs, resolved once."""

    settings: Settings
    clock: Clock
    ids: IdGenerator
    repository: TaskRepository
    checkpoints: CheckpointStore
    task_checkpoints: CheckpointService
    live_state: LiveStateStore
    task_log_store: TaskLogStore
    task_logs: TaskLogService
    log_keeper: LogKeeper
    task_history_store: TaskHistoryStore
    history_keeper: HistoryKeeper
    task_history: TaskHistoryService
    log_shipper: LogShipper
    publisher: EventPublisher
    subscriber: EventSubscriber
    upstream_requests: UpstreamRequestSource
    catalog: PydanticWorkerCatalog
    notification_channels: list[NotificationChannel]
    tasks: TaskService
    dispatcher: Dispatcher
    upstream_intake: UpstreamIntake
    monitor: Monitor
    queries: Queries
    activity: ActivityLog
    alerts: AlertService


def build_container(settings: Settings) -> Container:
    """A container for ``settings``; refuses, naming the setting, a backend this build cannot wire."""
    for port, available in AVAILABLE_BACKENDS.items():
        chosen = str(getattr(settings.backends, port))
        if chosen not in available:
            raise SettingsError(
                f"backends.{port}: {chosen!r} is not available in this build; "
                f"available: {', '.join(sorted(available))}"
            )
    return Container(settings=settings)


async def _resolved(value: Any) -> Any:
    return await value if asyncio.isfuture(value) or asyncio.iscoroutine(value) else value


async def start(container: Container) -> Services:
    """Resolve every service once (awaiting async resources) and hand back plain objects."""
    bus = await _resolved(container.event_bus())
    return Services(
        settings=container.settings(),
        clock=await _resolved(container.clock()),
        ids=await _resolved(container.ids()),
        repository=await _resolved(container.repository()),
        checkpoints=await _resolved(container.checkpoints()),
        task_checkpoints=await _resolved(container.task_checkpoints()),
        live_state=await _resolved(container.live_state()),
        task_log_store=await _resolved(container.task_log_store()),
        task_logs=await _resolved(container.task_logs()),
        log_keeper=await _resolved(container.log_keeper()),
        task_history_store=await _resolved(container.task_history_store()),
        history_keeper=await _resolved(container.history_keeper()),
        task_history=await _resolved(container.task_history()),
        log_shipper=bus,
        publisher=bus,
        subscriber=bus,
        upstream_requests=bus,
        catalog=await _resolved(container.catalog()),
        notification_channels=await _resolved(container.notification_channels()),
        tasks=await _resolved(container.tasks()),
        dispatcher=await _resolved(container.dispatcher()),
        upstream_intake=await _resolved(container.upstream_intake()),
        monitor=await _resolved(container.monitor()),
        queries=await _resolved(container.queries()),
        activity=await _resolved(container.activity()),
        alerts=await _resolved(container.alerts()),
    )


async def stop(container: Container) -> None:
    result = container.shutdown_resources()
    if result is not None:
        await result


# The generational collector's first threshold, in allocations (CPython's default: 700). A monitor cycle over
# 10k live tasks set off ~30 young and 2-3 middle-generation collections at 700 (measured), ~15% of the
# cycle; at 50,000, about one.
GC_FIRST_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """For a long-running Skalds process: collect young objects every 50k allocations, not every 700."""
    _, second, third = gc.get_threshold()
    gc.set_threshold(GC_FIRST_THRESHOLD, max(second, 20), max(third, 20))


def configure_logging(settings: Settings, name: str) -> None:
    """This process's logging from ``settings.logging``; ``name`` names its log file when there is one.
    Upstream's environment names that set nothing here are logged as warnings (docs/upstream.md)."""
    configure_logs(settings.logging.setup(), name)
    for line in ignored_upstream_names(os.environ):
        log.warning(line)


def build_process_node(
    services: Services,
    identity: NodeIdentity,
    worker_paths: Mapping[str, str],
    *,
    heartbeat_period_s: float = 1.0,
    cancel_grace_s: float = 10.0,
    kill_grace_s: float = 5.0,
    start_method: str = "forkserver",
    meter: ResourceMeter | None = None,
) -> tuple[NodeRuntime, ProcessWorkerSupervisor]:
    """A node running each task in its own OS process (``worker_paths``: class name -> import path); with a
    ``meter`` (``resource_meter()``), it measures its CPU and memory and its workers'."""
    supervisor = ProcessWorkerSupervisor(
        worker_paths,
        heartbeat_period_s=heartbeat_period_s,
        cancel_grace_s=cancel_grace_s,
        kill_grace_s=kill_grace_s,
        start_method=start_method,
        worker_logs=services.settings.logging.worker_setup(),
        node_id=identity.id,
        checkpoint_limit_bytes=services.settings.limits.checkpoint_bytes,
        capture=services.settings.task_logs.capture_setup(),
    )
    output = OutputShipper(identity.id, supervisor, services.log_shipper)
    return _node(services, identity, supervisor, meter, output), supervisor


def resource_meter() -> ResourceMeter:
    """What a real node measures itself with."""
    return PsutilResourceMeter()


def build_node(
    services: Services,
    identity: NodeIdentity,
    workers: Mapping[str, WorkerFunction],
    *,
    cancel_grace_s: float = 5.0,
    meter: ResourceMeter | None = None,
) -> NodeRuntime:
    """A node running ``workers`` in this process (the embedded mode and the tests)."""
    supervisor = InProcessWorkerSupervisor(workers, cancel_grace_s=cancel_grace_s)
    return _node(services, identity, supervisor, meter)


def _node(
    services: Services,
    identity: NodeIdentity,
    supervisor: WorkerSupervisor,
    meter: ResourceMeter | None,
    output: OutputShipper | None = None,
) -> NodeRuntime:
    """A node that fences itself once out of touch for the heartbeat suspect time, its workers gone before
    the dead time (when the monitor re-queues their tasks)."""
    return NodeRuntime(
        identity,
        services.repository,
        services.live_state,
        services.clock,
        supervisor,
        publisher=services.publisher,
        checkpoints=services.checkpoints,
        lease_ms=services.settings.heartbeat.suspect_after_ms,
        stop_within_ms=lease_stop_within_ms(services.settings),
        meter=meter,
        output=output,
    )


LEASE_STOP_MARGIN_MS = 1_000


def lease_stop_within_ms(settings: Settings) -> int:
    """How soon a node that lost its lease must have stopped its workers: before the monitor's dead-after
    (when it re-queues their tasks), with a margin; at least 500 ms."""
    heartbeat = settings.heartbeat
    return max(500, heartbeat.dead_after_ms - heartbeat.suspect_after_ms - LEASE_STOP_MARGIN_MS)


def edge_tasks(path: str, catalog: PydanticWorkerCatalog) -> list[EdgeTask]:
    """The tasks of an edge YAML file, validated against the registered worker models (never rewritten).

    Every problem in the file is reported at once, each naming the task and the field."""
    try:
        specs = load_edge_tasks(path, catalog)
    except EdgeYamlError as error:
        raise SettingsError(str(error)) from None
    return [
        EdgeTask(id=s.id, class_name=s.class_name, attachments=s.attachments, is_persistent=s.is_persistent)
        for s in specs
    ]


def import_worker_class(path: str) -> type[Any]:
    """A worker class by import path, as worker processes load it; SettingsError naming the path if not."""
    try:
        return load_worker_class(path)
    except (ImportError, AttributeError, TypeError, ValueError) as error:
        raise SettingsError(f"node.worker_classes: cannot load {path!r}: {error}") from None


def worker_path(worker_class: type[Any]) -> str:
    """How a worker process finds a class: ``module:qualname``."""
    return f"{worker_class.__module__}:{worker_class.__qualname__}"
