"""The worker authoring API, with upstream Skalds' names: ``BaseTaskWorker[Model]``, ``initialize`` and the
hook decorators. Existing workers move with an import change; new ones also get ``self.context``.

Hooks run in this order: ``before`` → ``main`` → ``after``; ``release`` always runs last. An exception in
``before`` or ``main`` fails the task with its type, message and a short traceback; an exception in ``after``
or ``release`` is reported as an error but does not change the outcome. ``initialize`` runs in the worker's
own process (upstream ran it in the node, blocking it).
"""

from __future__ import annotations

import inspect
import logging
import traceback
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from skalds.domain.heartbeat import Outcome
from skalds.worker.context import TaskCancelled, WorkerContext

log = logging.getLogger("skalds.worker")

T = TypeVar("T", bound=BaseModel)
Hook = Callable[..., Any]
HOOK_ATTRIBUTE = "__skalds_hook__"


def _hook(kind: str) -> Callable[[Hook], Hook]:
    def mark(function: Hook) -> Hook:
        setattr(function, HOOK_ATTRIBUTE, kind)
        return function

    return mark


run_before_handler = _hook("before")
run_main_handler = _hook("main")
run_after_handler = _hook("after")
release_handler = _hook("release")
update_event_handler = _hook("update")
pause_handler = _hook("pause")
resume_handler = _hook("resume")


@dataclass(frozen=True, slots=True)
class WorkerResult:
    outcome: Outcome
    error: str | None = None


def describe_error(error: BaseException, *, frames: int = 5) -> str:
    """Type, message and the last few frames: enough to act on at 3 a.m., small enough to store."""
    trace = "".join(traceback.format_exception(error, limit=-frames)).strip()
    return f"{type(error).__name__}: {error}\n{trace}"[:4_000]


def _takes_two(hook: Any) -> bool:
    """Whether an update handler takes the previous attachments beside the new ones."""
    try:
        parameters = list(inspect.signature(hook).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3 or any(p.kind is p.VAR_POSITIONAL for p in parameters)


class BaseTaskWorker(Generic[T]):
    """Subclass as ``class MyWorker(BaseTaskWorker[MyAttachments])`` and decorate the hooks."""

    _hooks: ClassVar[Mapping[str, Hook]] = {}
    checkpoint_model: ClassVar[type[BaseModel] | None] = None
    """Set to a pydantic model to have ``context.save_checkpoint`` validate against it and
    ``context.saved_checkpoint`` return an instance of it."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hooks: dict[str, Hook] = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                kind = getattr(value, HOOK_ATTRIBUTE, None)
                if kind is not None:
                    hooks[kind] = value
        cls._hooks = hooks

    def __init__(self, task_id: str | None = None, *, attempt: int = 1, context: WorkerContext | None = None):
        self.task_id = task_id or f"MOCK_TASK_{uuid.uuid4().hex[:8]}"
        self.task_type = type(self).__name__
        self.context = context or WorkerContext(self.task_id, attempt)
        self.context.checkpoint_model = type(self).checkpoint_model
        self.attachments: T | None = None

    # --- what subclasses provide ----------------------------------------------------------------------

    def initialize(self, data: T) -> None:
        """Receive the validated attachments; the default keeps them as ``self.attachments``."""
        self.attachments = data

    @classmethod
    def get_data_model(cls) -> type[T]:
        """The attachment model: the argument of ``BaseTaskWorker[...]`` in the class's bases."""
        for klass in cls.__mro__:
            for base in getattr(klass, "__orig_bases__", ()):
                if typing.get_origin(base) is BaseTaskWorker:
                    (model,) = typing.get_args(base)
                    if isinstance(model, type) and issubclass(model, BaseModel):
                        return typing.cast(type[T], model)
        raise TypeError(f"{cls.__name__} must subclass BaseTaskWorker[<a pydantic model>]")

    # --- running ---------------------------------------------------------------------------------------

    def start(self) -> WorkerResult:
        """Run standalone in the foreground (upstream: ``worker.initialize(model); worker.start()``)."""
        if self.attachments is None:
            raise RuntimeError(f"{self.task_type}: call initialize(model) before start()")
        return self.execute()

    def join(self, timeout: float | None = None) -> None:
        """Upstream workers were processes; ``start`` now runs to the end, so there is nothing to wait for."""

    def execute(self) -> WorkerResult:
        """before → main → after, then release; maps what happened to an outcome."""
        hooks = self._hooks
        if "main" not in hooks:
            self._release()
            return WorkerResult(Outcome.FAILED, f"{self.task_type} has no @run_main_handler")
        try:
            self._call("before")
            hooks["main"](self)
        except TaskCancelled:
            self._release()
            return WorkerResult(Outcome.CANCELLED)
        except Exception as error:
            log.error("task %s failed", self.task_id, exc_info=True)  # the whole traceback, in its output
            self._release()
            return WorkerResult(Outcome.FAILED, describe_error(error))
        try:
            self._call("after")
        except TaskCancelled:
            pass
        except Exception as error:
            self.context.report_error(f"after hook failed: {describe_error(error)}")
        self._release()
        if self.context.cancel_requested:
            return WorkerResult(Outcome.CANCELLED)
        return WorkerResult(Outcome.FINISHED)

    def apply_update(self, attachments: Mapping[str, Any]) -> None:
        """Validate new attachments against the model and hand them to ``@update_event_handler``: as
        ``handler(self, new)`` (upstream's form), or ``handler(self, new, previous)`` when it takes both."""
        model = self.get_data_model().model_validate(attachments)
        previous, self.attachments = self.attachments, model
        hook = self._hooks.get("update")
        if hook is not None and _takes_two(hook):
            hook(self, model, previous)
        else:
            self._call("update", model)

    def notify_pause(self) -> None:
        self._call("pause")

    def notify_resume(self) -> None:
        self._call("resume")

    def _call(self, kind: str, *args: Any) -> None:
        hook = self._hooks.get(kind)
        if hook is not None:
            hook(self, *args)

    def _release(self) -> None:
        try:
            self._call("release")
        except BaseException as error:  # a failing release must not hide the outcome
            self.context.report_error(f"release hook failed: {describe_error(error)}")
