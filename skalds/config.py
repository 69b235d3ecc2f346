"""Settings, validated once at start-up; invalid values fail with a message naming the setting.

Pydantic lives here, at the edge; the domain receives plain frozen policy objects built from these.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skalds.domain.dispatch import DispatchStrategy, ResourceThresholds
from skalds.domain.heartbeat import HeartbeatPolicy
from skalds.domain.retry import RetryPolicy


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class HeartbeatSettings(_Section):
    suspect_after_ms: Annotated[int, Field(gt=0)] = 10_000
    dead_after_ms: Annotated[int, Field(gt=0)] = 30_000
    stall_after_ms: Annotated[int, Field(gt=0)] | None = 300_000
    first_heartbeat_grace_ms: Annotated[int, Field(ge=0)] = 30_000

    def policy(self) -> HeartbeatPolicy:
        return HeartbeatPolicy(
            suspect_after_ms=self.suspect_after_ms,
            dead_after_ms=self.dead_after_ms,
            stall_after_ms=self.stall_after_ms,
            first_heartbeat_grace_ms=self.first_heartbeat_grace_ms,
        )


class DispatchSettings(_Section):
    strategy: DispatchStrategy = DispatchStrategy.LEAST_TASKS
    max_cpu_percent: Annotated[float, Field(gt=0, le=100)] | None = None
    max_memory_percent: Annotated[float, Field(gt=0, le=100)] | None = None

    @field_validator("strategy", mode="before")
    @classmethod
    def _case_insensitive(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    def thresholds(self) -> ResourceThresholds:
        return ResourceThresholds(
            max_cpu_percent=self.max_cpu_percent, max_memory_percent=self.max_memory_percent
        )


class RetrySettings(_Section):
    base_delay_ms: Annotated[int, Field(ge=0)] = 5_000
    factor: Annotated[float, Field(ge=1)] = 2.0
    max_delay_ms: Annotated[int, Field(ge=0)] = 300_000

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_delay_ms=self.base_delay_ms, factor=self.factor, max_delay_ms=self.max_delay_ms
        )


class Settings(_Section):
    heartbeat: HeartbeatSettings = HeartbeatSettings()
    dispatch: DispatchSettings = DispatchSettings()
    retry: RetrySettings = RetrySettings()
