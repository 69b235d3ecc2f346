"""The one listener a worker supervisor tells of its workers' changes (``WorkerSupervisor.on_change``).

Shared by the in-process and the OS-process supervisors, so both keep the same promise: a listener that
raises is logged, and the workers go on being supervised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class ChangeListener:
    def __init__(self) -> None:
        self._listener: Callable[[str], None] | None = None

    def set(self, listener: Callable[[str], None]) -> None:
        """``listener`` replaces the one before."""
        self._listener = listener

    def notify(self, task_id: str) -> None:
        listener = self._listener
        if listener is None:
            return
        try:
            listener(task_id)
        except Exception:  # the listener's failure is its own; the workers go on being supervised
            log.exception("worker change listener failed for %s", task_id)
