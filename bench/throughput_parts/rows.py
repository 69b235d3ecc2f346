"""One measured row of the throughput table, and the markdown table of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Row:
    """``shown`` is the measured value as printed; ``ok`` is None for rows without a target."""

    part: str
    measure: str
    shown: str
    target: str = "-"
    ok: bool | None = None
    value: float | None = None
    unit: str = ""
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("pass" if ok else "**FAIL**")


def render(rows: list[Row]) -> str:
    lines = ["| part | measure | measured | target | result | notes |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r.part} | {r.measure} | {r.shown} | {r.target} | {verdict(r.ok)} | {r.note} |" for r in rows
    ]
    return "\n".join(lines)
