"""Log records as people and log collectors read them: plain text or JSON lines, on stderr and, when a
directory is set, in a size-rotated file per process whose old files are removed after the retention.

Upstream's knobs (LOG_LEVEL, LOG_PATH, LOG_ROTATION_MB, LOG_RETENTION, LOG_SPLIT_WITH_WORKER_ID) arrive
here through the settings. Standard library only: every library we use logs through ``logging`` already.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TRACE, SUCCESS = 5, 25  # upstream's loguru levels, between the standard ones
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_UNITS = {"second": 1, "minute": 60, "hour": 3_600, "day": 86_400, "week": 604_800}


@dataclass(frozen=True, slots=True)
class LogSetup:
    """Picklable, so a worker process can be handed its node's setup."""

    level: int = logging.INFO
    json_lines: bool = False
    directory: str | None = None
    rotation_bytes: int = 10 * 1024 * 1024
    retention_s: float | None = 3 * 86_400


def level_number(name: str) -> int:
    return {"TRACE": TRACE, "SUCCESS": SUCCESS}.get(name.upper()) or logging.getLevelName(name.upper())


def retention_seconds(text: str) -> float | None:
    """``"3 days"``, ``"12 hours"``, ``"1 week"``; a bare number is days (upstream's .env.example wrote
    ``3``); ``""`` or ``"0"`` keeps files forever. Raises ValueError for anything else."""
    text = text.strip().lower()
    if text in ("", "0"):
        return None
    found = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]*?)s?", text)
    if found is None or (found.group(2) and found.group(2) not in _UNITS):
        raise ValueError(f"expected a duration like '3 days' or '12 hours', got {text!r}")
    return float(found.group(1)) * _UNITS[found.group(2) or "day"]


_RECORD_ATTRIBUTES = frozenset(
    {
        *("name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info"),
        *("exc_text", "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread"),
        *("threadName", "processName", "process", "taskName", "message", "asctime"),
    }
)
"""What every LogRecord has (``logging.LogRecord.__init__``, and what ``Formatter.format`` adds); anything
else on a record came from ``extra={...}``."""


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the exception when there is one, and every
    field the caller passed as ``extra`` (``task_id``, ``node``, ``attempt``, ...) as a key of its own.

    A field that is not JSON is written as its ``str()``; one named like a key above does not replace it.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRIBUTES
        }
        entry.update(
            time=self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            level=record.levelname,
            logger=record.name,
            message=record.getMessage(),
            process=record.process,
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class _RetainingFileHandler(logging.handlers.RotatingFileHandler):
    """Rotates by size; on every rotation, removes the directory's log files older than the retention."""

    def __init__(self, path: Path, setup: LogSetup) -> None:
        super().__init__(path, maxBytes=setup.rotation_bytes, backupCount=10_000, encoding="utf-8")
        self._retention_s = setup.retention_s

    def doRollover(self) -> None:  # noqa: N802 - the stdlib's name
        super().doRollover()
        remove_expired(Path(self.baseFilename).parent, self._retention_s)


def remove_expired(directory: Path, retention_s: float | None, now: float | None = None) -> list[Path]:
    if retention_s is None or not directory.is_dir():
        return []
    oldest = (time.time() if now is None else now) - retention_s
    removed = []
    for candidate in directory.glob("*.log*"):
        if candidate.is_file() and candidate.stat().st_mtime < oldest:
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def configure(setup: LogSetup, name: str, *, console: bool = True) -> None:
    """The root logger of this process: ``name`` names its file (``<directory>/<name>.log``)."""
    logging.addLevelName(TRACE, "TRACE")
    logging.addLevelName(SUCCESS, "SUCCESS")
    formatter = JsonLines() if setup.json_lines else logging.Formatter(TEXT_FORMAT)
    handlers: list[logging.Handler] = []
    if console:
        handlers.append(logging.StreamHandler(sys.stderr))
    if setup.directory:
        directory = Path(setup.directory)
        directory.mkdir(parents=True, exist_ok=True)
        remove_expired(directory, setup.retention_s)
        handlers.append(_RetainingFileHandler(directory / f"{_safe(name)}.log", setup))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(setup.level)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "skalds"
