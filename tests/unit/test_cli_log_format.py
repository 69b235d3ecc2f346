"""`--log-format json|text` on `skalds controller`, `skalds node` and `skalds up`, over `logging.json`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from skalds.adapters.logs import JsonLines
from skalds.bootstrap import configure_logging
from skalds.config import Settings
from skalds.entrypoints.cli import _controller_settings, _node_settings, _up_settings, build_parser

SETTINGS_OF: dict[str, Callable[..., Settings]] = {
    "controller": _controller_settings,
    "node": _node_settings,
    "up": _up_settings,
}


@pytest.fixture(autouse=True)
def no_logging_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SKALDS_LOGGING__JSON", "SKALDS_LOGGING__JSON_FORMAT"):
        monkeypatch.delenv(name, raising=False)


def settings(*argv: str) -> Settings:
    args = build_parser().parse_args(list(argv))
    return SETTINGS_OF[args.command](args)


@pytest.mark.parametrize("command", ["controller", "node", "up"])
def test_each_server_command_takes_the_log_format(command: str) -> None:
    assert settings(command, "--log-format", "json").logging.json_format is True
    assert settings(command, "--log-format", "TEXT").logging.json_format is False
    assert settings(command).logging.json_format is False  # the default: text


@pytest.mark.parametrize("command", ["controller", "node", "up"])
def test_the_option_wins_over_the_file_and_without_it_the_file_decides(command: str, tmp_path: Path) -> None:
    config = tmp_path / "skalds.yaml"
    config.write_text("logging:\n  json: true\n")
    assert settings(command, "--config", str(config)).logging.json_format is True
    assert settings(command, "--config", str(config), "--log-format", "text").logging.json_format is False


def test_the_option_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SKALDS_LOGGING__JSON", "true")
    assert settings("node").logging.json_format is True
    assert settings("node", "--log-format", "text").logging.json_format is False


def test_anything_else_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["controller", "--log-format", "yaml"])
    assert exit_.value.code == 2
    assert "--log-format" in capsys.readouterr().err


@pytest.mark.usefixtures("restore_root_logger")
def test_json_format_makes_the_process_write_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(settings("controller", "--log-format", "json"), "controller")
    assert {type(handler.formatter) for handler in logging.getLogger().handlers} == {JsonLines}
    logging.getLogger("skalds.test").info("task %s started", "t1", extra={"task_id": "t1", "node": "n1"})
    [line] = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert (entry["message"], entry["task_id"], entry["node"]) == ("task t1 started", "t1", "n1")
