"""Every environment name upstream read (or documented) sets the setting the one table in skalds/config.py
says, in upstream's units; the names that set nothing here are each named, with the reason, at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skalds import config
from skalds.config import UPSTREAM_IGNORED, ignored_upstream_names, load_settings

# name -> (value as upstream's users set it, what the setting then holds)
SAMPLES: dict[str, tuple[str, Any]] = {
    "SKALD_ID": ("skald-7", "skald-7"),
    "SKALD_MODE": ("EDGE", "edge"),
    "YAML_FILE": ("tasks.yml", "tasks.yml"),
    "LOG_LEVEL": ("success", "SUCCESS"),
    "LOG_PATH": ("/var/log/skalds", "/var/log/skalds"),
    "LOG_RETENTION": ("5 days", "5 days"),
    "LOG_ROTATION_MB": ("20", 20),
    "LOG_SPLIT_WITH_WORKER_ID": ("yes", True),
    "REDIS_PASSWORD": ("secret", "secret"),
    "REDIS_KEY_TTL": ("60", 60_000),  # seconds upstream, milliseconds here
    "KAFKA_USERNAME": ("user", "user"),
    "KAFKA_PASSWORD": ("pw", "pw"),
    "KAFKA_TOPIC_PARTITIONS": ("3", 3),
    "KAFKA_REPLICATION_FACTOR": ("2", 2),
    "MONGO_HOST": ("mongodb://root:root@db:27017/", "mongodb://root:root@db:27017/"),
    "DB_NAME": ("fleet", "fleet"),
    "SYSTEM_CONTROLLER_MODE": ("dispatcher", "DISPATCHER"),
    "SYSTEM_CONTROLLER_HOST": ("0.0.0.0", "0.0.0.0"),
    "SYSTEM_CONTROLLER_PORT": ("9000", 9000),
    "MONITOR_TASK_INTERVAL": ("0.5", 500),
    "MONITOR_HEARTBEAT_TIMEOUT": ("5", 5_000),
    "DISPATCHER_INTERVAL": ("2", 2_000),
    "DISPATCHER_STRATEGY": ("round_robin", "ROUND_ROBIN"),
    "TASK_WORKER_RETRY": ("4", 5),  # retries after the first attempt
    "REDIS_HOST": ("cache", "redis://cache:6379/0"),
    "REDIS_PORT": ("6380", "redis://localhost:6380/0"),
    "KAFKA_HOST": ("broker", "broker:9092"),
    "KAFKA_PORT": ("19092", "localhost:19092"),
}
LOCATIONS = {name: loc for name, loc, _ in config._UPSTREAM} | {
    name: loc for host, port, _, loc, _ in config._HOST_PORT for name in (host, port)
}


def held(settings: config.Settings, loc: tuple[str, str]) -> Any:
    value = getattr(getattr(settings, loc[0]), loc[1])
    if hasattr(value, "get_secret_value"):
        return value.get_secret_value()
    return value.value if hasattr(value, "value") else value


def test_every_name_of_the_table_has_a_sample_here() -> None:
    assert set(SAMPLES) == set(LOCATIONS) - {"DASHBOARD_STATIC_PATH"}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_an_upstream_name_sets_its_setting(name: str) -> None:
    value, expected = SAMPLES[name]
    got = held(load_settings(environ={name: value}), LOCATIONS[name])
    assert got == expected and got != held(load_settings(environ={}), LOCATIONS[name])


def test_the_documented_dashboard_path_serves_a_bundle_and_is_ignored_with_a_warning_otherwise(
    tmp_path: Path,
) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html>")
    settings = load_settings(environ={"DASHBOARD_STATIC_PATH": str(tmp_path)})
    assert settings.controller.dashboard_dir == tmp_path.resolve()
    upstreams_sample = "skalds/system_controller/static/dashboard"  # upstream's DEPLOYMENT.md
    for value in (upstreams_sample, str(tmp_path / "missing")):
        assert load_settings(environ={"DASHBOARD_STATIC_PATH": value}).controller.dashboard_dir is None
        [line] = ignored_upstream_names({"DASHBOARD_STATIC_PATH": value})
        assert "is not a dashboard bundle" in line and "serves its own dashboard" in line
    assert ignored_upstream_names({"DASHBOARD_STATIC_PATH": str(tmp_path)}) == []


@pytest.mark.parametrize("name", sorted(UPSTREAM_IGNORED))
def test_a_name_that_sets_nothing_here_is_named_with_the_reason(name: str) -> None:
    [line] = ignored_upstream_names({name: "1"})
    assert line.startswith(f"{name} is set but has no effect") and UPSTREAM_IGNORED[name] in line
    assert name not in LOCATIONS
