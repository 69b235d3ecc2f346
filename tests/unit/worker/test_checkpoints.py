"""``context.save_checkpoint`` / ``context.saved_checkpoint``: JSON or the worker's model, size-bounded,
the latest save sent once; an attempt reads what an earlier one saved."""

from __future__ import annotations

import math

import pytest
from pydantic import BaseModel

from skalds.worker.base import BaseTaskWorker, run_main_handler
from skalds.worker.context import WorkerContext


class Settings(BaseModel):
    pass


class Position(BaseModel):
    row: int


class Plain(BaseTaskWorker[Settings]):
    @run_main_handler
    def main(self) -> None:
        pass


class Typed(Plain):
    checkpoint_model = Position


def test_a_save_is_sent_once_and_only_the_latest_counts() -> None:
    context = WorkerContext("t1")
    assert context.saved_checkpoint is None and context.take_checkpoint() is None
    context.save_checkpoint({"row": 1})
    context.save_checkpoint({"row": 2})
    assert context.take_checkpoint() == (2, '{"row":2}')
    assert context.take_checkpoint() is None
    assert context.saved_checkpoint == {"row": 2}


def test_an_attempt_reads_what_an_earlier_one_saved() -> None:
    worker = Typed("t1", context=WorkerContext("t1", 2, saved_checkpoint='{"row":7}'))
    assert worker.context.saved_checkpoint == Position(row=7)
    worker.context.save_checkpoint({"row": 8})  # a dict is validated by the model too
    assert worker.context.take_checkpoint() == (1, '{"row":8}')


@pytest.mark.parametrize("value", [{"x": math.nan}, {"x": object()}, {1, 2}])
def test_what_is_not_json_is_refused_saying_so(value: object) -> None:
    with pytest.raises(ValueError, match="must be JSON"):
        WorkerContext("t1").save_checkpoint(value)


def test_a_checkpoint_over_the_limit_is_refused_naming_it() -> None:
    context = WorkerContext("t1", checkpoint_limit_bytes=100)
    with pytest.raises(ValueError, match="at most 100 bytes"):
        context.save_checkpoint({"text": "x" * 200})
    assert context.take_checkpoint() is None


def test_the_model_refuses_a_checkpoint_it_does_not_describe() -> None:
    worker = Typed("t1")
    with pytest.raises(ValueError):
        worker.context.save_checkpoint({"row": "not a number"})


def test_progress_carries_its_scale_and_a_total_must_be_one() -> None:
    context = WorkerContext("t1")
    context.report_progress(37, total=120, unit="frames", message="decoding")
    snap = context.snapshot()
    assert (snap.progress, snap.total, snap.unit, snap.message) == (37.0, 120.0, "frames", "decoding")
    context.report_progress(38)  # each call replaces the whole scale
    assert context.snapshot().total is None
    with pytest.raises(ValueError, match="above 0"):
        context.report_progress(1, total=0)
