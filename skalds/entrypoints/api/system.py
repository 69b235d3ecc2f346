"""``/api/system``: health per dependency, status, dashboard summary, metrics, recent activity."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery

import skalds
from skalds.domain.task import TaskStatus
from skalds.entrypoints.api.frames import frames_for
from skalds.entrypoints.api.injection import Injected
from skalds.entrypoints.api.openapi import READ, error_responses
from skalds.entrypoints.api.replies import (
    ActivityReply,
    HealthReply,
    MetricsReply,
    SummaryReply,
    SystemStatusReply,
)
from skalds.entrypoints.api.schemas import summary_json

PROBE_TIMEOUT_S = 2.0
UNHEALTHY = ResponseSpec(
    data_container=HealthReply, description="a dependency did not answer: details names it and why"
)


async def _probe(check: Any) -> str | None:
    try:
        await asyncio.wait_for(check, PROBE_TIMEOUT_S)
    except Exception as error:  # a dependency that is down must show here, not crash the endpoint
        return f"{type(error).__name__}: {error}"
    return None


class SystemController(Controller):
    path = "/api/system"

    @get("/health", responses={**error_responses(400, 401), 503: UNHEALTHY})
    async def health(self, services: Injected) -> Response[HealthReply]:
        """200 when every dependency answers, 503 with the failing ones named otherwise."""
        checks = {
            "repository": services.repository.ping(),
            "liveState": services.live_state.ping(),
            "eventBus": services.publisher.ping(),
        }
        names = list(checks)
        found = await asyncio.gather(*(_probe(check) for check in checks.values()))
        problems = dict(zip(names, found, strict=True))
        healthy = not any(problems.values())
        body: HealthReply = {
            "status": "healthy" if healthy else "unhealthy",
            "timestamp": services.clock.now_ms(),
            "services": {
                name: "healthy" if not problem else "unhealthy" for name, problem in problems.items()
            },
            "details": {name: problem for name, problem in problems.items() if problem},
        }
        return Response(body, status_code=200 if healthy else 503)

    @get("/status", responses=error_responses(*READ))
    async def status(self, request: Request[Any, Any, Any], services: Injected) -> SystemStatusReply:
        dispatcher, monitor = services.dispatcher, services.monitor
        loops = request.app.state.get("loops", {})

        def running(name: str) -> bool:
            return name in loops and not loops[name].done()

        return {
            "mode": services.settings.controller.mode.value,
            "version": skalds.__version__,
            "backends": services.settings.backends.model_dump(mode="json"),
            "components": [
                {
                    "name": "Dispatcher",
                    "running": running("Dispatcher"),
                    "details": {
                        "strategy": dispatcher.strategy.value,
                        "cycles": dispatcher.counters.cycles,
                        "assigned": dispatcher.counters.assigned,
                        "lost": dispatcher.counters.lost,
                        "retried": dispatcher.counters.retried,
                    },
                },
                {
                    "name": "Monitor",
                    "running": running("Monitor"),
                    "details": {
                        "cycles": monitor.counters.cycles,
                        "changed": monitor.counters.changed,
                        "lastCycleMs": monitor.counters.last_cycle_ms,
                        "lastCycleAt": monitor.counters.last_cycle_at,
                    },
                },
            ],
        }

    @get("/dashboard/summary", responses=error_responses(*READ))
    async def dashboard_summary(self, services: Injected) -> SummaryReply:
        return summary_json(await services.queries.summary())

    @get("/metrics", responses=error_responses(*READ))
    async def metrics(self, services: Injected) -> MetricsReply:
        summary = await services.queries.summary()
        views = await services.queries.nodes()
        distribution = {v.node.id: len(v.tasks) for v in views}
        running = summary.by_status[TaskStatus.RUNNING]
        return {
            "timestamp": services.clock.now_ms(),
            "skalds": {
                "total": summary.total_nodes,
                "online": summary.online_nodes,
                "offline": summary.total_nodes - summary.online_nodes,
                "nodes": summary.node_nodes,
                "edges": summary.edge_nodes,
            },
            "tasks": {status.value.lower(): count for status, count in summary.by_status.items()}
            | {"total": summary.total_tasks},
            "performance": {
                "averageTasksPerSkald": round(running / summary.total_nodes, 2) if summary.total_nodes else 0,
                "taskDistribution": distribution,
            },
        }

    @get("/activity", responses=error_responses(*READ, 422))
    async def recent_activity(self, services: Injected, limit: FromQuery[int] = 50) -> ActivityReply:
        recent = services.activity.recent(min(max(limit, 1), 500))
        # what happened, once each: not upstream's copy of a change (a task_heartbeat with ``change``)
        frames = [framed.frame for event in recent for framed in frames_for(event)]
        return {"items": [f for f in frames if not (f["type"] == "task_heartbeat" and "change" in f["data"])]}
