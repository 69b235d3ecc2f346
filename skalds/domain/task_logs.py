"""A task's output: the lines its worker logged or printed, per attempt, in the order it wrote them.

A line is numbered by its worker (``seq`` counts from 1 within an attempt), so the store keeps each line once
however often a batch is redelivered, and a reader resumes exactly after the last line it saw. A gap in the
numbers is lines the worker dropped because it wrote faster than its node could ship (it says so in a line
of its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from skalds.domain.errors import ValidationError

LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


class LogStream(StrEnum):
    """Where a line came from: the ``logging`` module, or what the task wrote to stdout or stderr."""

    LOG = "log"
    STDOUT = "stdout"
    STDERR = "stderr"


@dataclass(frozen=True, slots=True, kw_only=True)
class LogLine:
    task_id: str
    attempt: int
    seq: int
    at: int  # epoch milliseconds, the worker's clock
    level: str  # LEVELS' names; stdout is INFO, stderr WARNING
    stream: LogStream
    logger: str  # the logger's name; "" for stdout and stderr
    message: str

    @property
    def level_number(self) -> int:
        return LEVELS.get(self.level, 20)


def level_threshold(name: str | None) -> int:
    """The number of a level name a reader filters by (``warning`` or ``WARNING``); 0 for none."""
    if name is None or name == "":
        return 0
    number = LEVELS.get(name.upper())
    if number is None:
        raise ValidationError("level", f"must be one of {', '.join(LEVELS)}, got {name!r}")
    return number


@dataclass(frozen=True, slots=True, kw_only=True)
class LogQuery:
    """Lines of one attempt after ``after`` (a line's ``seq``), at or above ``min_level``, at most ``limit``.
    ``tail`` instead takes the last ``limit`` lines (what a reader wants first: the end of the output)."""

    task_id: str
    attempt: int
    after: int = 0
    limit: int = 1_000
    min_level: int = 0
    tail: bool = False

    def __post_init__(self) -> None:
        if self.attempt < 0:
            raise ValidationError("attempt", f"must be at least 0, got {self.attempt}")
        if self.after < 0:
            raise ValidationError("since", f"must be at least 0, got {self.after}")
        if not 1 <= self.limit <= 10_000:
            raise ValidationError("limit", f"must be between 1 and 10000, got {self.limit}")

    def takes(self, line: LogLine) -> bool:
        return line.seq > self.after and line.level_number >= self.min_level


@dataclass(frozen=True, slots=True, kw_only=True)
class LogPage:
    """``last_seq`` is the highest line number stored for the attempt (0 for none); ``cursor`` is where the
    next read starts (its ``after``): past every line this page covered, including those the level filter
    skipped, so a follower never reads a skipped line twice."""

    lines: Sequence[LogLine]
    last_seq: int
    cursor: int


def page_of(stored: Sequence[LogLine], query: LogQuery) -> LogPage:
    """The page ``query`` asks for out of one attempt's stored lines, in ``seq`` order."""
    last = stored[-1].seq if stored else 0
    taken = [line for line in stored if query.takes(line)]
    if query.tail or len(taken) <= query.limit:
        picked = taken[-query.limit :]
        return LogPage(lines=picked, last_seq=last, cursor=max(last, query.after))
    picked = taken[: query.limit]
    return LogPage(lines=picked, last_seq=last, cursor=picked[-1].seq)
