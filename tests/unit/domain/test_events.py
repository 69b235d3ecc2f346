"""A heartbeat batch is one monitor cycle's per-task observations as columns, and gives them back as such."""

from __future__ import annotations

import pytest

from skalds.domain import events as ev
from skalds.domain.errors import ValidationError
from skalds.domain.task import TaskStatus


def test_a_batch_gives_back_its_per_task_events_in_order_at_the_batchs_time() -> None:
    batch = ev.TaskHeartbeatsObserved(
        at=7,
        task_ids=("t1", "t2"),
        sequences=(3, 9),
        progress=(None, 42.5),
        verdicts=("alive", "stalled"),
        statuses=(TaskStatus.RUNNING, TaskStatus.PAUSED),
    )
    assert list(batch.each()) == [
        ev.TaskHeartbeatObserved(
            at=7, task_id="t1", sequence=3, progress=None, verdict="alive", status=TaskStatus.RUNNING
        ),
        ev.TaskHeartbeatObserved(
            at=7, task_id="t2", sequence=9, progress=42.5, verdict="stalled", status=TaskStatus.PAUSED
        ),
    ]


def test_an_empty_batch_gives_nothing() -> None:
    empty = ev.TaskHeartbeatsObserved(at=1, task_ids=(), sequences=(), progress=(), verdicts=(), statuses=())
    assert list(empty.each()) == []


@pytest.mark.parametrize("column", ["sequences", "progress", "verdicts", "statuses"])
def test_a_column_of_another_length_than_the_task_ids_is_refused_by_name(column: str) -> None:
    columns: dict[str, tuple[object, ...]] = {
        "sequences": (1, 2),
        "progress": (None, 1.0),
        "verdicts": ("alive", "alive"),
        "statuses": (TaskStatus.RUNNING, TaskStatus.RUNNING),
    }
    columns[column] = columns[column][:1]
    with pytest.raises(ValidationError) as caught:
        ev.TaskHeartbeatsObserved(at=1, task_ids=("t1", "t2"), **columns)  # type: ignore[arg-type]
    assert caught.value.field == column
    assert "has 1 entries; expected 2" in caught.value.reason
