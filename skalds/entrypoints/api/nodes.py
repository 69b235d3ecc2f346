"""``/api/skalds``: the nodes, in upstream's SkaldResponse shape."""

from __future__ import annotations

from typing import Literal

from litestar import Controller, get
from litestar.params import FromPath, FromQuery

from skalds.domain.nodes import NodeHealth, NodeMode
from skalds.entrypoints.api.injection import Injected
from skalds.entrypoints.api.openapi import READ, error_responses
from skalds.entrypoints.api.replies import SkaldJson, SkaldPage, SkaldStatusReply, SkaldTask, SkaldTasksReply
from skalds.entrypoints.api.schemas import skald_json


class SkaldController(Controller):
    path = "/api/skalds"

    @get(["/", ""], responses=error_responses(*READ, 422))
    async def list_skalds(
        self,
        services: Injected,
        type: FromQuery[Literal["node", "edge", "single_process"] | None] = None,
        status: FromQuery[Literal["online", "offline"] | None] = None,
    ) -> SkaldPage:
        """Upstream's filters, checked: an unknown ``type`` or ``status`` is a 422, not an empty page."""
        views = await services.queries.nodes()
        items = [skald_json(v) for v in views]
        if type == "single_process":  # upstream's type says node or edge; a single_process node is "edge"
            items = [i for i in items if i["mode"] == "single_process"]
        elif type:
            items = [i for i in items if i["type"] == type]
        if status:
            items = [i for i in items if i["status"] == status]
        return {"items": items, "total": len(items)}

    @get("/{skald_id:str}", responses=error_responses(*READ, 404))
    async def get_skald(self, services: Injected, skald_id: FromPath[str]) -> SkaldJson:
        return skald_json(await services.queries.node(skald_id))

    @get("/{skald_id:str}/tasks", responses=error_responses(*READ, 404))
    async def skald_tasks(self, services: Injected, skald_id: FromPath[str]) -> SkaldTasksReply:
        view = await services.queries.node(skald_id)
        tasks: list[SkaldTask] = [
            {
                "id": t.id,
                "className": t.class_name,
                "assignedAt": t.assigned_at,
                "lifecycleStatus": t.lifecycle_status,
            }
            for t in view.tasks
        ]
        return {"skaldId": skald_id, "tasks": tasks, "totalTasks": len(tasks)}

    @get("/{skald_id:str}/status", responses=error_responses(*READ, 404))
    async def skald_status(self, services: Injected, skald_id: FromPath[str]) -> SkaldStatusReply:
        view = await services.queries.node(skald_id)
        node, online = view.node, view.health is NodeHealth.ONLINE
        return {
            "skaldId": node.id,
            "status": "online" if online else "offline",
            "type": "node" if node.mode is NodeMode.NODE else "edge",
            "lastUpdate": node.last_heartbeat_at,
            "taskCount": len(view.tasks),
            "isOnline": online,
            "details": {
                "canAcceptTasks": online and node.mode is NodeMode.NODE and not node.draining,
                "lastHeartbeatAge": node.silent_for(services.clock.now_ms()),
                "tasks": [{"id": t.id, "className": t.class_name} for t in view.tasks],
            },
        }
