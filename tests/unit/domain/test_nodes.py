"""Node health follows the same silence thresholds as task heartbeats."""

from __future__ import annotations

import pytest

from skalds.domain.errors import ValidationError
from skalds.domain.heartbeat import HeartbeatPolicy
from skalds.domain.nodes import Node, NodeHealth, node_health
from tests.unit.domain.builders import a_node

POLICY = HeartbeatPolicy(suspect_after_ms=10_000, dead_after_ms=30_000)


@pytest.mark.parametrize(
    ("silence", "health"),
    [
        (0, NodeHealth.ONLINE),
        (10_000, NodeHealth.ONLINE),
        (10_001, NodeHealth.SUSPECT),
        (30_001, NodeHealth.OFFLINE),
    ],
)
def test_health_by_silence(silence: int, health: NodeHealth) -> None:
    node = a_node(now=1_000)
    assert node_health(node, 1_000 + silence, POLICY) is health


def test_a_node_that_never_beat_is_judged_from_its_registration() -> None:
    node = Node(id="n1", registered_at=1_000)
    assert node_health(node, 40_000, POLICY) is NodeHealth.OFFLINE


def test_negative_capacity_is_refused() -> None:
    with pytest.raises(ValidationError, match="capacity"):
        Node(id="n1", capacity=-1)
