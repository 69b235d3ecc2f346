"""Skalds: dispatch long-running tasks to worker nodes and keep control of them while they run.

This module is the public API for worker authors. Names are resolved lazily (module ``__getattr__``), so
``import skalds.domain`` loads nothing beyond the standard library.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; at run time ``__getattr__`` imports on first use
    from skalds.entrypoints.node import Skald, Skalds
    from skalds.worker.base import (
        BaseTaskWorker,
        pause_handler,
        release_handler,
        resume_handler,
        run_after_handler,
        run_before_handler,
        run_main_handler,
        update_event_handler,
    )
    from skalds.worker.context import TaskCancelled, WorkerContext

try:
    __version__ = version("skalds")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

_PUBLIC: dict[str, str] = {
    "BaseTaskWorker": "skalds.worker.base",
    "run_before_handler": "skalds.worker.base",
    "run_main_handler": "skalds.worker.base",
    "run_after_handler": "skalds.worker.base",
    "release_handler": "skalds.worker.base",
    "update_event_handler": "skalds.worker.base",
    "pause_handler": "skalds.worker.base",
    "resume_handler": "skalds.worker.base",
    "WorkerContext": "skalds.worker.context",
    "TaskCancelled": "skalds.worker.context",
    "Skald": "skalds.entrypoints.node",
    "Skalds": "skalds.entrypoints.node",
}
"""Public name -> defining module, imported on first use."""


__all__ = [
    "BaseTaskWorker",
    "Skald",
    "Skalds",
    "TaskCancelled",
    "WorkerContext",
    "pause_handler",
    "release_handler",
    "resume_handler",
    "run_after_handler",
    "run_before_handler",
    "run_main_handler",
    "update_event_handler",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'skalds' has no attribute {name!r}")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
