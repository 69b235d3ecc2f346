"""Where ``skalds up`` keeps its tasks (docs/data.md): a SQLite file in ``.skalds/`` unless told otherwise,
and a start-up line that says so."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skalds.config import Backend, Settings, SettingsError
from skalds.entrypoints.cli import _up_settings, build_parser
from skalds.entrypoints.embedded import storage_line


@pytest.fixture(autouse=True)
def no_skalds_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("SKALDS_")]:
        monkeypatch.delenv(name)


def settings_of(*options: str, env: dict[str, str] | None = None) -> Settings:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        return _up_settings(build_parser().parse_args(["up", *options]))


def up(*options: str, env: dict[str, str] | None = None) -> tuple[Backend, Path]:
    settings = settings_of(*options, env=env)
    return settings.backends.repository, settings.sqlite.path


def test_by_default_the_tasks_live_in_a_sqlite_file_under_dot_skalds() -> None:
    assert up() == (Backend.SQLITE, Path(".skalds/tasks.sqlite3"))


def test_data_dir_moves_the_file_and_in_memory_keeps_nothing() -> None:
    assert up("--data-dir", "/srv/skalds") == (Backend.SQLITE, Path("/srv/skalds/tasks.sqlite3"))
    assert up("--in-memory")[0] is Backend.MEMORY


def test_a_repository_the_settings_chose_is_kept() -> None:
    assert up(env={"SKALDS_BACKENDS__REPOSITORY": "mongo"})[0] is Backend.MONGO
    assert up(env={"SKALDS_BACKENDS__REPOSITORY": "memory"})[0] is Backend.MEMORY
    assert up("--repository", "mongo")[0] is Backend.MONGO
    custom = {"SKALDS_BACKENDS__REPOSITORY": "sqlite", "SKALDS_SQLITE__PATH": "/data/t.db"}
    assert up(env=custom) == (Backend.SQLITE, Path("/data/t.db"))


@pytest.mark.parametrize(
    ("options", "env", "named"),
    [
        (("--in-memory", "--data-dir", "x"), {}, "choose one"),
        (("--in-memory",), {"SKALDS_BACKENDS__REPOSITORY": "mongo"}, "backends.repository is set to mongo"),
        (("--data-dir", "x"), {"SKALDS_BACKENDS__REPOSITORY": "mongo"}, "keeps no file"),
    ],
)
def test_contradictory_choices_are_refused_naming_them(
    options: tuple[str, ...], env: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=named):
        up(*options, env=env)


def test_the_start_up_line_says_where_the_tasks_live_and_what_survives() -> None:
    line = storage_line(settings_of("--data-dir", "/tmp/x"))
    assert "tasks in /tmp/x/tasks.sqlite3 (kept across restarts)" in line
    assert "live_state=memory" in line and "event_bus=memory" in line
    memory = storage_line(settings_of("--in-memory"))
    assert "gone when this process ends" in memory
