"""The worker authoring API in-process: hook order, outcomes, and what is reported when hooks fail."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from skalds import (
    BaseTaskWorker,
    TaskCancelled,
    release_handler,
    run_after_handler,
    run_before_handler,
    run_main_handler,
    update_event_handler,
)
from skalds.domain.heartbeat import Outcome


class Params(BaseModel):
    n: int = 1


class Recorder(BaseTaskWorker[Params]):
    def __init__(self, fail: str | None = None) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.fail = fail

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if self.fail == name:
            raise RuntimeError(f"{name} broke")

    @run_before_handler
    def before(self) -> None:
        self._step("before")

    @run_main_handler
    def main(self) -> None:
        self._step("main")
        if self.fail == "cancel":
            self.context.request_cancel()
            self.context.checkpoint()

    @run_after_handler
    def after(self) -> None:
        self._step("after")

    @release_handler
    def release(self) -> None:
        self._step("release")

    @update_event_handler
    def update(self, params: Params) -> None:
        self.calls.append(f"update:{params.n}")


def test_a_standalone_worker_runs_its_hooks_in_order_and_finishes() -> None:
    worker = Recorder()
    worker.initialize(Params(n=3))
    result = worker.start()
    assert result.outcome is Outcome.FINISHED
    assert worker.calls == ["before", "main", "after", "release"]
    assert worker.task_id.startswith("MOCK_TASK_")
    assert Recorder.get_data_model() is Params


@pytest.mark.parametrize("where", ["before", "main"])
def test_an_exception_in_before_or_main_fails_with_type_message_and_traceback(where: str) -> None:
    worker = Recorder(fail=where)
    worker.initialize(Params())
    result = worker.start()
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and result.error.startswith(f"RuntimeError: {where} broke")
    assert "Traceback" in result.error
    assert worker.calls[-1] == "release"


@pytest.mark.parametrize("where", ["after", "release"])
def test_after_and_release_failures_are_reported_but_keep_the_outcome(where: str) -> None:
    worker = Recorder(fail=where)
    worker.initialize(Params())
    assert worker.start().outcome is Outcome.FINISHED
    assert f"{where} hook failed" in (worker.context.snapshot().error or "")


def test_a_cancel_seen_at_a_checkpoint_ends_cancelled_after_release() -> None:
    worker = Recorder(fail="cancel")
    worker.initialize(Params())
    assert worker.start().outcome is Outcome.CANCELLED
    assert worker.calls == ["before", "main", "release"]


def test_updates_are_validated_into_the_model_before_the_handler_sees_them() -> None:
    worker = Recorder()
    worker.initialize(Params())
    worker.apply_update({"n": "7"})
    assert worker.calls == ["update:7"]
    with pytest.raises(ValueError, match="n"):
        worker.apply_update({"n": "many"})


def test_start_before_initialize_is_refused_and_a_worker_without_main_fails() -> None:
    with pytest.raises(RuntimeError, match="initialize"):
        Recorder().start()

    class NoMain(BaseTaskWorker[Params]):
        pass

    worker = NoMain()
    worker.initialize(Params())
    assert worker.start().error == "NoMain has no @run_main_handler"


def test_cancellation_is_not_an_exception_user_code_can_swallow() -> None:
    assert not issubclass(TaskCancelled, Exception)


class Comparing(BaseTaskWorker[Params]):
    """An update handler that takes two arguments gets the previous attachments beside the new ones."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int | None]] = []

    @update_event_handler
    def update(self, params: Params, previous: Params | None) -> None:
        self.seen.append((params.n, previous.n if previous else None))


def test_an_update_handler_taking_two_arguments_sees_the_old_value_beside_the_new() -> None:
    worker = Comparing()
    worker.initialize(Params(n=3))
    worker.apply_update({"n": 4})
    worker.apply_update({"n": 9})
    assert worker.seen == [(4, 3), (9, 4)]
    upstream_form = Recorder()  # one argument: upstream's handler signature, called as before
    upstream_form.initialize(Params())
    upstream_form.apply_update({"n": 2})
    assert upstream_form.calls == ["update:2"]
