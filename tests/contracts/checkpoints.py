"""What every CheckpointStore promises. Subclass with a ``store`` fixture; run unchanged on every adapter."""

from __future__ import annotations

import pytest

from skalds.domain.checkpoints import Checkpoint
from skalds.domain.ports import CheckpointStore


def saved(task_id: str, attempt: int, sequence: int, value: str = '{"at":1}', at: int = 1_000) -> Checkpoint:
    return Checkpoint(task_id=task_id, attempt=attempt, sequence=sequence, value=value, saved_at=at)


class CheckpointStoreContract:
    @pytest.fixture
    def store(self) -> CheckpointStore:
        raise NotImplementedError

    async def test_the_latest_save_is_what_comes_back(self, store: CheckpointStore) -> None:
        assert await store.get("t1") is None
        await store.save_many([saved("t1", 1, 1, '{"row":10}'), saved("t2", 1, 1)])
        await store.save_many([saved("t1", 1, 2, '{"row":20}', at=2_000)])
        assert await store.get("t1") == saved("t1", 1, 2, '{"row":20}', at=2_000)
        assert set(await store.get_many(["t1", "t2", "t3"])) == {"t1", "t2"}

    async def test_an_older_save_never_overwrites_a_newer_one(self, store: CheckpointStore) -> None:
        await store.save_many([saved("t1", 2, 1, '{"attempt":2}')])
        await store.save_many([saved("t1", 1, 9, '{"late":true}'), saved("t1", 2, 1, '{"again":true}')])
        assert (await store.get("t1")) == saved("t1", 2, 1, '{"attempt":2}')
        await store.save_many([saved("t1", 2, 2, '{"next":true}')])
        assert (await store.get("t1")) == saved("t1", 2, 2, '{"next":true}')

    async def test_a_deleted_checkpoint_is_gone_and_a_new_run_starts_over(
        self, store: CheckpointStore
    ) -> None:
        await store.save_many([saved("t1", 3, 5)])
        await store.delete("t1")
        await store.delete("never-saved")
        assert await store.get("t1") is None
        await store.save_many([saved("t1", 1, 1)])  # any save after a clear counts
        assert (await store.get("t1")) == saved("t1", 1, 1)

    async def test_big_and_unicode_values_come_back_whole(self, store: CheckpointStore) -> None:
        value = '{"text":"' + "é" * 100_000 + '"}'
        await store.save_many([saved("t1", 1, 1, value)])
        found = await store.get("t1")
        assert found is not None and found.value == value and found.size_bytes == len(value.encode())
