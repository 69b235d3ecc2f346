"""No silent islands: a ``skalds node`` or ``skalds controller`` whose event bus or live-state store is in
memory shares it with nobody. Started beside ``skalds up`` with the defaults it would run its own private
world, joined to nothing and seen by no one, and say nothing; it refuses instead, naming the settings to
change, unless ``--standalone`` asks for exactly that (a benchmark, an API-only demo). A single_process node
is alone by design (upstream's mode: its tasks come from its YAML file) and is never refused."""

from __future__ import annotations

from skalds.config import Backend, Settings
from skalds.domain.nodes import NodeMode

SHARED_PORTS = {
    "event_bus": ("SKALDS_BACKENDS__EVENT_BUS=kafka", "SKALDS_KAFKA_BOOTSTRAP"),
    "live_state": ("SKALDS_BACKENDS__LIVE_STATE=redis", "SKALDS_REDIS_URL"),
}


def island_refusal(settings: Settings, command: str) -> str | None:
    """Why ``command`` (``node`` or ``controller``) would be an island with these settings, or None."""
    if command == "node" and settings.node.mode is NodeMode.SINGLE_PROCESS:
        return None
    alone = [port for port in SHARED_PORTS if getattr(settings.backends, port) is Backend.MEMORY]
    if not alone:
        return None
    changes = ", ".join(f"{SHARED_PORTS[port][0]} (and {SHARED_PORTS[port][1]})" for port in alone)
    ports = " and ".join(f"backends.{port}" for port in alone)
    other = "controller" if command == "node" else "node"
    return (
        f"{ports} in memory: this {command} could reach no {other} and no {other} could reach it. "
        f"Set {changes} to join the others, run `skalds up` for everything in one process, "
        "or pass --standalone to run alone on purpose"
    )
