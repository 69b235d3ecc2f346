"""``/metrics`` in Prometheus' text format: tasks by status, nodes by health, dispatch counts and queue-wait
histogram, heartbeats processed, SSE clients, alerts fired, and each node's and each running task's CPU and
memory as their nodes last measured them. Values are read at scrape time from the services; prometheus-client
renders them (its exposition format and histogram semantics are not worth rewriting)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from litestar import Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from skalds.application.queries import NodeView
from skalds.domain.nodes import NodeHealth
from skalds.entrypoints.api.injection import Injected


class _Snapshot(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


@get("/metrics", include_in_schema=False)
async def metrics(request: Request[Any, Any, Any], services: Injected) -> Response[bytes]:
    summary = await services.queries.summary()
    views = await services.queries.nodes()
    tasks = GaugeMetricFamily("skalds_tasks", "Tasks by lifecycle status", labels=["status"])
    for status, count in summary.by_status.items():
        tasks.add_metric([status.value], count)
    nodes = GaugeMetricFamily("skalds_nodes", "Skald nodes by health", labels=["health"])
    for health in NodeHealth:
        nodes.add_metric([health.value], sum(v.health is health for v in views))
    counters = services.dispatcher.counters
    assigned = CounterMetricFamily("skalds_dispatch_assigned", "Tasks assigned by this process")
    assigned.add_metric([], counters.assigned)
    lost = CounterMetricFamily("skalds_dispatch_lost", "Assignments lost to a concurrent change")
    lost.add_metric([], counters.lost)
    wait = counters.queue_wait_ms
    latency = HistogramMetricFamily("skalds_dispatch_queue_wait_ms", "Time a task waited in the queue, ms")
    latency.add_metric([], buckets=wait.cumulative(), sum_value=wait.total)
    beats = CounterMetricFamily("skalds_heartbeats_processed", "New worker heartbeats seen by the monitor")
    beats.add_metric([], services.monitor.counters.heartbeats)
    feed = request.app.state.get("event_feed")
    clients = GaugeMetricFamily("skalds_sse_clients", "Connected live-event clients")
    clients.add_metric([], len(feed.clients) if feed is not None else 0)
    fired = CounterMetricFamily("skalds_alerts_fired", "Alerts raised, by rule", labels=["rule"])
    for rule, count in sorted(services.alerts.fired.items()):
        fired.add_metric([rule], count)
    usage = await _resource_usage(services, views)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot([tasks, nodes, assigned, lost, latency, beats, clients, fired, *usage]))
    # the constant names its charset, and Litestar adds one to every text/* type: send it once
    media_type = CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")
    return Response(generate_latest(registry), media_type=media_type)


async def _resource_usage(services: Injected, views: Sequence[NodeView]) -> list[Metric]:
    """Per node and per running task, only what was measured: a node without a meter has no sample, not 0."""
    node_cpu = GaugeMetricFamily(
        "skalds_node_cpu_percent", "Node CPU in use, % of the machine", labels=["node"]
    )
    node_memory = GaugeMetricFamily(
        "skalds_node_memory_percent",
        "Node memory in use, % of the machine or its cgroup limit",
        labels=["node"],
    )
    labels = ["node", "task_id", "class_name"]
    task_cpu = GaugeMetricFamily("skalds_task_cpu_percent", "Worker process CPU, % of one CPU", labels=labels)
    task_memory = GaugeMetricFamily(
        "skalds_task_memory_bytes", "Worker process resident memory", labels=labels
    )
    for view in views:
        if view.node.cpu_percent is not None:
            node_cpu.add_metric([view.node.id], view.node.cpu_percent)
        if view.node.memory_percent is not None:
            node_memory.add_metric([view.node.id], view.node.memory_percent)
    running = [(view.node.id, task) for view in views for task in view.tasks]
    reports = await services.live_state.latest_heartbeats([task.id for _, task in running]) if running else {}
    for node_id, task in running:
        report = reports.get(task.id)
        if report is None or report.attempt not in (None, task.attempt):
            continue
        if report.cpu_percent is not None:
            task_cpu.add_metric([node_id, task.id, task.class_name], report.cpu_percent)
        if report.memory_bytes is not None:
            task_memory.add_metric([node_id, task.id, task.class_name], report.memory_bytes)
    return [node_cpu, node_memory, task_cpu, task_memory]
