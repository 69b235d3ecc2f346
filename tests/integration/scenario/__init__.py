"""The operator scenario, shared by bench/operator_scenario.py (timings, real defaults) and
tests/integration/test_operator_scenario.py (invariants only, short thresholds).

One controller in dispatcher mode and nodes run by ``tests/integration/cluster.py``; the load (``load``)
goes in over the HTTP API: tasks of ``JournalWorker`` (bench/workers.py) with seeded random durations and
priorities, some updated, paused and resumed, cancelled while they run (``controls``), some that fail, and
one node SIGKILLed half-way (``driver``).

What happened is read from three sources, never from the processes' own logs:

- **the journal** (``journal``), written by the workers themselves (one JSON line per start, update, pause,
  resume, end, release; wall time, pid, task, attempt, node). A *run* is one worker process running one task.
- **the live stream** ``/api/events/tasks`` (SSE, ``feed``), stamped with ``time.time()`` as each frame
  arrives: when the API showed each status change.
- **/proc** (``processes``): the pids of the journal's workers and of the killed node's process tree, polled
  every tick, so a run without an ``end`` line still has an end (the moment its process was seen gone).

The driver fills a ``Record`` (``record``); ``analyse(record)`` (``analysis``) turns it into the
measurements and the violations (``evidence``, ``timings``, ``ideal``, ``requeue``, ``violations``); both
callers use it, and the bench prints it with ``table``.
"""

from tests.integration.scenario.analysis import analyse
from tests.integration.scenario.driver import Options, Scenario, start_journaled_cluster
from tests.integration.scenario.evidence import Evidence
from tests.integration.scenario.load import WORKER, Load
from tests.integration.scenario.record import Record

__all__ = [
    "WORKER",
    "Evidence",
    "Load",
    "Options",
    "Record",
    "Scenario",
    "analyse",
    "start_journaled_cluster",
]
