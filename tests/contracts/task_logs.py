"""What every TaskLogStore promises. Subclass with a ``store`` fixture; run unchanged on every adapter."""

from __future__ import annotations

import pytest

from skalds.domain.ports import TaskLogStore
from skalds.domain.task_logs import LogLine, LogQuery, LogStream


def line(
    seq: int, *, task: str = "t1", attempt: int = 1, level: str = "INFO", text: str | None = None
) -> LogLine:
    return LogLine(
        task_id=task,
        attempt=attempt,
        seq=seq,
        at=1_000 + seq,
        level=level,
        stream=LogStream.LOG if seq % 3 else LogStream.STDOUT,
        logger="job" if seq % 3 else "",
        message=f"line {seq}" if text is None else text,
    )


def query(**fields: object) -> LogQuery:
    return LogQuery(**{"task_id": "t1", "attempt": 1, **fields})  # type: ignore[arg-type]


class TaskLogStoreContract:
    lines_per_attempt = 50  # the store under test keeps this many lines per attempt

    @pytest.fixture
    def store(self) -> TaskLogStore:
        raise NotImplementedError

    async def test_lines_come_back_whole_and_in_order(self, store: TaskLogStore) -> None:
        await store.append([line(1), line(2, text="é ✓ \n second row"), line(3)])
        page = await store.read(query())
        assert list(page.lines) == [line(1), line(2, text="é ✓ \n second row"), line(3)]
        assert page.last_seq == 3 and page.cursor == 3

    async def test_a_batch_delivered_again_adds_nothing(self, store: TaskLogStore) -> None:
        await store.append([line(1), line(2)])
        await store.append([line(1), line(2), line(3)])
        await store.append([line(2)])
        assert [x.seq for x in (await store.read(query())).lines] == [1, 2, 3]

    async def test_a_reader_resumes_after_the_last_line_it_saw(self, store: TaskLogStore) -> None:
        await store.append([line(seq) for seq in range(1, 11)])
        first = await store.read(query(limit=4))
        assert [x.seq for x in first.lines] == [1, 2, 3, 4] and first.cursor == 4
        rest = await store.read(query(after=first.cursor, limit=100))
        assert [x.seq for x in rest.lines] == list(range(5, 11)) and rest.cursor == 10
        assert (await store.read(query(after=10))).lines == []

    async def test_tail_gives_the_last_lines_oldest_first(self, store: TaskLogStore) -> None:
        await store.append([line(seq) for seq in range(1, 11)])
        page = await store.read(query(limit=3, tail=True))
        assert [x.seq for x in page.lines] == [8, 9, 10] and page.cursor == 10

    async def test_a_level_filter_skips_lines_and_the_cursor_passes_them(self, store: TaskLogStore) -> None:
        levels = ["INFO", "WARNING", "DEBUG", "ERROR", "INFO"]
        await store.append([line(seq, level=level) for seq, level in enumerate(levels, start=1)])
        page = await store.read(query(min_level=30))
        assert [(x.seq, x.level) for x in page.lines] == [(2, "WARNING"), (4, "ERROR")]
        assert page.cursor == 5  # the INFO after the ERROR was looked at too
        first = await store.read(query(min_level=30, limit=1))
        assert [x.seq for x in first.lines] == [2] and first.cursor == 2
        tail = await store.read(query(min_level=30, limit=1, tail=True))
        assert [x.seq for x in tail.lines] == [4]

    async def test_attempts_are_kept_apart(self, store: TaskLogStore) -> None:
        await store.append([line(1, attempt=1), line(1, attempt=2), line(2, attempt=2), line(1, task="t2")])
        assert [x.seq for x in (await store.read(query(attempt=2))).lines] == [1, 2]
        assert await store.attempts("t1") == [1, 2]
        assert await store.attempts("t2") == [1]
        assert await store.attempts("none") == []
        assert (await store.read(query(attempt=7))).lines == []

    async def test_an_attempt_keeps_its_last_lines(self, store: TaskLogStore) -> None:
        total = self.lines_per_attempt * 4
        for start in range(1, total + 1, 100):
            await store.append([line(seq) for seq in range(start, min(start + 100, total + 1))])
        page = await store.read(query(limit=10_000))
        seqs = [x.seq for x in page.lines]
        assert seqs[-1] == total and page.last_seq == total
        assert self.lines_per_attempt <= len(seqs) < total  # Redis trims approximately: a few more may stay
        assert seqs == list(range(seqs[0], total + 1))

    async def test_forgotten_tasks_lose_every_attempt(self, store: TaskLogStore) -> None:
        await store.append([line(1, attempt=1), line(1, attempt=2), line(1, task="t2")])
        await store.forget_tasks(["t1", "never-logged"])
        assert await store.attempts("t1") == []
        assert (await store.read(query())).lines == []
        assert await store.attempts("t2") == [1]
        await store.forget_tasks([])

    async def test_it_answers_a_ping(self, store: TaskLogStore) -> None:
        await store.ping()
