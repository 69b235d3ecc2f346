"""Settings become domain policies in the composition root; bad values are refused by name."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from skalds.bootstrap import Container
from skalds.config import Settings
from skalds.domain.dispatch import DispatchStrategy
from skalds.domain.heartbeat import HeartbeatPolicy


def test_defaults_build_the_domain_policies() -> None:
    container = Container(settings=Settings())
    assert container.heartbeat_policy() == HeartbeatPolicy()
    assert container.clock().now_ms() > 1_600_000_000_000
    assert container.ids().new_id() != container.ids().new_id()


def test_strategy_names_are_case_insensitive_as_upstream_docs_wrote_them() -> None:
    assert (
        Settings.model_validate({"dispatch": {"strategy": "round_robin"}}).dispatch.strategy
        is DispatchStrategy.ROUND_ROBIN
    )


def test_an_unknown_setting_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match=r"heartbeat\.suspect_afterms"):
        Settings.model_validate({"heartbeat": {"suspect_afterms": 1}})
