"""``/api/alerts`` and ``/api/silences``: what fired and resolved, acknowledging it, and muting rules.

The alerts live in the controller that runs the rules (mode monitor or dispatcher): ask that one
(docs/alerts.md). A bad field is a 422 naming it, an unknown id a 404, a change its state forbids a 409.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias

from litestar import Controller, delete, get, post
from litestar.params import FromPath, FromQuery
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from skalds.domain.alerts import MAX_NAME_CHARS
from skalds.domain.silences import MAX_COMMENT_CHARS, MAX_DURATION_MS, Silence
from skalds.entrypoints.api.injection import Injected
from skalds.entrypoints.api.openapi import READ, WRITE, body, error_responses
from skalds.entrypoints.api.replies import AlertJson, AlertPage, SilenceJson, SilencePage
from skalds.entrypoints.api.schemas import alert_json

CHANGE = (*WRITE, 404, 409)
DEFAULT_BY = "api"


class _Request(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True)


class AcknowledgeRequest(_Request):
    by: str = Field(default=DEFAULT_BY, min_length=1, max_length=MAX_NAME_CHARS)


class SilenceRequest(_Request):
    rule: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    subject: str = Field(default="*", min_length=1, max_length=MAX_NAME_CHARS)
    duration_ms: int = Field(ge=1, le=MAX_DURATION_MS, strict=True)
    created_by: str = Field(min_length=1, max_length=MAX_NAME_CHARS)
    comment: str = Field(default="", max_length=MAX_COMMENT_CHARS)


AcknowledgeBody: TypeAlias = Annotated[
    dict[str, Any], body(AcknowledgeRequest, "who is on it (default 'api'); {} is enough")
]
SilenceBody: TypeAlias = Annotated[
    dict[str, Any],
    body(SilenceRequest, "mute a rule ('*': every rule) on a subject ('*': every subject) for durationMs"),
]


def silence_json(silence: Silence, now: int) -> SilenceJson:
    return {
        "id": silence.id,
        "rule": silence.rule,
        "subject": silence.subject,
        "status": "active" if silence.active_at(now) else "expired",
        "startsAt": silence.starts_at,
        "endsAt": silence.ends_at,
        "createdBy": silence.created_by,
        "comment": silence.comment,
        "expiredBy": silence.expired_by,
    }


class AlertController(Controller):
    path = "/api/alerts"

    @get(["/", ""], responses=error_responses(*READ, 422))
    async def alerts(
        self, services: Injected, active: FromQuery[bool] = False, limit: FromQuery[int] = 100
    ) -> AlertPage:
        """``active=true``: the firing ones; otherwise the history, newest first, resolved ones too."""
        chosen = services.alerts.active() if active else services.alerts.history(min(max(limit, 1), 1_000))
        return {"items": [alert_json(a) for a in chosen], "total": len(chosen)}

    @get("/{alert_id:str}", responses=error_responses(*READ, 404))
    async def alert(self, services: Injected, alert_id: FromPath[str]) -> AlertJson:
        return alert_json(services.alerts.book.get(alert_id))

    @post("/{alert_id:str}/ack", status_code=200, responses=error_responses(*CHANGE))
    async def acknowledge(
        self, services: Injected, alert_id: FromPath[str], data: AcknowledgeBody
    ) -> AlertJson:
        """Someone is on it. 409 once it resolved; acknowledging again keeps the first who did."""
        request = AcknowledgeRequest.model_validate(data)
        return alert_json(await services.alerts.book.acknowledge(alert_id, request.by))


class SilenceController(Controller):
    path = "/api/silences"

    @get(["/", ""], responses=error_responses(*READ, 422))
    async def silences(self, services: Injected, active: FromQuery[bool] = False) -> SilencePage:
        """Newest first; ``active=true`` leaves out the ones that ended."""
        now = services.clock.now_ms()
        found = services.alerts.book.silences(active_only=active)
        return {"items": [silence_json(s, now) for s in found], "total": len(found)}

    @get("/{silence_id:str}", responses=error_responses(*READ, 404))
    async def silence(self, services: Injected, silence_id: FromPath[str]) -> SilenceJson:
        return silence_json(services.alerts.book.get_silence(silence_id), services.clock.now_ms())

    @post(["/", ""], status_code=201, responses=error_responses(*WRITE))
    async def create_silence(self, services: Injected, data: SilenceBody) -> SilenceJson:
        """Matching alerts are still recorded and listed; the notification channels are not told."""
        request = SilenceRequest.model_validate(data)
        silence = await services.alerts.book.silence(
            rule=request.rule,
            subject=request.subject,
            duration_ms=request.duration_ms,
            created_by=request.created_by,
            comment=request.comment,
        )
        return silence_json(silence, services.clock.now_ms())

    @delete("/{silence_id:str}", status_code=200, responses=error_responses(*CHANGE))
    async def expire_silence(
        self, services: Injected, silence_id: FromPath[str], by: FromQuery[str] = DEFAULT_BY
    ) -> SilenceJson:
        """Ends it now (Alertmanager's expire); 409 if it already ended. Alerts it muted that still fire
        are told to the channels now."""
        silence = await services.alerts.book.expire_silence(silence_id, by)
        return silence_json(silence, services.clock.now_ms())
