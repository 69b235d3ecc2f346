"""In the worker process: the task's ``logging`` records and what it prints, line by line, sent to its node.

Each line is numbered (``seq``, from 1 per attempt) and stamped with its time and level; stdout lines are
INFO and stderr lines WARNING. A thread of its own sends what waits every ``linger_s`` (sooner once
``batch_lines`` wait) over the worker's pipe, so a task that logs 10,000 lines a second costs its node a
few messages a second, and the heartbeat thread never waits for it. When lines arrive faster than the pipe
takes them, at most ``max_waiting`` wait: the oldest go, and one WARNING line says how many.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Line = tuple[int, int, str, str, str, str]  # seq, at (epoch ms), level, stream, logger, message
_FORMAT = logging.Formatter("%(message)s")


@dataclass(frozen=True, slots=True)
class CaptureSetup:
    """Picklable: the node's settings for its workers' output."""

    level: int = logging.INFO
    max_line_chars: int = 8_000
    max_waiting: int = 50_000
    batch_lines: int = 1_000
    linger_s: float = 0.1


class LineBuffer:
    """Numbered lines waiting for the pipe; thread-safe."""

    def __init__(self, setup: CaptureSetup) -> None:
        self._setup = setup
        self._lock = threading.Lock()
        self._lines: deque[Line] = deque()
        self._seq = 0
        self._dropped = 0
        self.full = threading.Event()  # a batch's worth waits: send now rather than at the linger

    def add(self, level: str, stream: str, logger: str, message: str) -> None:
        limit = self._setup.max_line_chars
        if len(message) > limit:
            message = f"{message[:limit]}… [{len(message) - limit} more characters cut]"
        at = int(time.time() * 1000)
        with self._lock:
            self._seq += 1
            if len(self._lines) >= self._setup.max_waiting:
                self._lines.popleft()
                self._dropped += 1
            self._lines.append((self._seq, at, level, stream, logger, message))
            if len(self._lines) >= self._setup.batch_lines:
                self.full.set()

    def take(self, limit: int) -> list[Line]:
        """Up to ``limit`` of the oldest waiting lines; the note on dropped ones goes with the last batch."""
        with self._lock:
            waiting = self._lines
            lines = [waiting.popleft() for _ in range(min(limit, len(waiting)))]
            if len(waiting) < self._setup.batch_lines:
                self.full.clear()
            if self._dropped and not waiting:
                self._seq += 1
                note = (
                    f"skalds: {self._dropped} earlier lines dropped: the task wrote faster than its node "
                    "could take them"
                )
                lines.append((self._seq, int(time.time() * 1000), "WARNING", "log", "skalds", note))
                self._dropped = 0
        return lines


class _ToNode(logging.Handler):
    def __init__(self, buffer: LineBuffer, level: int) -> None:
        super().__init__(level)
        self._buffer = buffer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = _FORMAT.format(record)
        except Exception:  # a bad format string in user code: keep what it tried to say
            text = f"{record.msg!r} % {record.args!r}"
        self._buffer.add(record.levelname, "log", record.name, text)


class _LineStream(io.TextIOBase):
    """stdout or stderr as lines for the node; a partial line waits for its newline (or the end)."""

    def __init__(self, buffer: LineBuffer, stream: str, level: str, original: Any) -> None:
        self._buffer = buffer
        self._stream = stream
        self._level = level
        self._original = original
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._partial += text
            *complete, self._partial = self._partial.split("\n")
        for line in complete:
            self._buffer.add(self._level, self._stream, "", line.rstrip("\r"))
        return len(text)

    def flush(self) -> None:
        """A partial line stays: ``print(..., end="")`` followed by more is still one line."""

    def finish(self) -> None:
        with self._lock:
            rest, self._partial = self._partial, ""
        if rest:
            self._buffer.add(self._level, self._stream, "", rest)

    def fileno(self) -> int:  # what writes to the descriptor itself (C code, subprocesses) reaches
        return int(self._original.fileno())

    def isatty(self) -> bool:
        return False


class OutputCapture:
    """Installed once the task is known: a root ``logging`` handler, stdout and stderr, and the sender."""

    def __init__(self, setup: CaptureSetup, send: Callable[[list[Line]], None]) -> None:
        self._setup = setup
        self._send = send
        self.buffer = LineBuffer(setup)
        self._stop = threading.Event()
        self._sending = threading.Lock()  # the sender thread and the final flush never interleave batches
        self._streams: list[_LineStream] = []
        self._thread = threading.Thread(target=self._run, name="skalds-output", daemon=True)

    def install(self) -> None:
        root = logging.getLogger()
        root.addHandler(_ToNode(self.buffer, self._setup.level))
        if root.level == logging.NOTSET or root.level > self._setup.level:
            root.setLevel(self._setup.level)
        out = _LineStream(self.buffer, "stdout", "INFO", sys.__stdout__)
        err = _LineStream(self.buffer, "stderr", "WARNING", sys.__stderr__)
        self._streams = [out, err]
        sys.stdout, sys.stderr = out, err
        self._thread.start()

    def finish(self) -> None:
        """Send everything written so far, partial lines too; call before the outcome, which ends the run."""
        self._stop.set()
        for stream in self._streams:
            stream.finish()
        self._flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.buffer.full.wait(self._setup.linger_s)
            if not self._stop.is_set():
                self._flush()

    def _flush(self) -> None:
        with self._sending:
            while lines := self.buffer.take(self._setup.batch_lines):
                self._send(lines)
