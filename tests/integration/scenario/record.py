"""What one run observed, as data: the driver fills a ``Record``, the analysis reads one. It is the contract
between the two, and it round-trips through JSON so a saved run can be analysed again (``--reanalyse``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class Record:
    """Everything the driver observed; JSON-serialisable (``as_json``), and all ``analyse`` needs."""

    load: dict[str, Any]
    plan: list[dict[str, Any]]
    slots: dict[str, int]
    dead_after_s: float
    orphan_grace_s: float
    t0: float = 0.0
    created: dict[str, float] = field(default_factory=dict)  # task -> POST answered
    journal: list[dict[str, Any]] = field(default_factory=list)
    frames: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    controls: list[dict[str, Any]] = field(default_factory=list)
    worker_deaths: dict[int, float] = field(default_factory=dict)
    killed: str | None = None
    kill_at: float | None = None
    kill_reason: str = ""
    killed_below: list[dict[str, Any]] = field(default_factory=list)  # pid, started, command, died
    live_at_kill: dict[str, dict[str, Any]] = field(default_factory=dict)  # the stream's view at the kill
    offline_at: float | None = None  # when the API first showed the killed node offline
    final: dict[str, dict[str, Any]] = field(default_factory=dict)  # every task, read at the end
    final_at: float = 0.0
    deadline_hit: bool = False
    evidence: dict[str, Any] = field(default_factory=dict)
    skalds_origin: str = ""
    feed_reconnects: int = 0
    feed_dropped: int = 0

    def as_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["worker_deaths"] = {str(pid): t for pid, t in self.worker_deaths.items()}
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Record:
        """A record written by ``as_json``, to analyse again."""
        fields = dict(body)
        fields["worker_deaths"] = {int(pid): t for pid, t in body["worker_deaths"].items()}
        fields["frames"] = [(arrived, frame) for arrived, frame in body["frames"]]
        return cls(**fields)
