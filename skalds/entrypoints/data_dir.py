"""The folder ``skalds up`` keeps its tasks in is its own while it runs.

Two ``skalds up`` on one folder would share one SQLite file under one node id, ``embedded-node``: the second
would take the first's running tasks for those of its own previous run and hand them back. An exclusive
lock on ``<folder>/lock`` (with the holder's pid in it) refuses the second at once, and a folder that cannot
be written is refused with what to pass instead, not reported as a backend outage."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class DataDirError(Exception):
    """Why ``skalds up`` cannot use the folder, in one line that says what to do."""


def claim(folder: Path) -> IO[str]:
    """The open, locked lock file; keep it open for as long as the folder is in use."""
    folder = folder.resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = (folder / "lock").open("a+")
    except OSError as error:
        raise DataDirError(
            f"cannot keep tasks in {folder}: {error.strerror or error}; "
            "pass --data-dir DIR (a folder it may write) or --in-memory"
        ) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        holder = lock.read().strip() or "?"
        lock.close()
        raise DataDirError(
            f"another skalds up (pid {holder}) keeps its tasks in {folder}; stop it, or pass --data-dir DIR"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock
