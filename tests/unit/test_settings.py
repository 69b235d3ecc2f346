"""Settings become domain policies in the composition root; bad values are refused by name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from skalds.application.reconciling import OfflineNodePolicy
from skalds.bootstrap import Container
from skalds.config import (
    Backend,
    BackendSettings,
    ControllerMode,
    LogLevel,
    RedisSettings,
    Settings,
    SettingsError,
    load_settings,
)
from skalds.domain.dispatch import DispatchStrategy
from skalds.domain.errors import SkaldsError
from skalds.domain.heartbeat import HeartbeatPolicy
from skalds.domain.nodes import NodeMode


def test_defaults_build_the_domain_policies() -> None:
    container = Container(settings=Settings())
    assert container.heartbeat_policy() == HeartbeatPolicy()
    assert container.clock().now_ms() > 1_600_000_000_000
    assert container.ids().new_id() != container.ids().new_id()


def test_strategy_names_are_case_insensitive_as_upstream_docs_wrote_them() -> None:
    assert (
        Settings.model_validate({"dispatch": {"strategy": "round_robin"}}).dispatch.strategy
        is DispatchStrategy.ROUND_ROBIN
    )


def test_an_unknown_setting_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match=r"heartbeat\.suspect_afterms"):
        Settings.model_validate({"heartbeat": {"suspect_afterms": 1}})


# ---- load_settings: YAML, then upstream names, then SKALDS_* --------------------------------------------


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "skalds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_and_no_environment_gives_the_defaults() -> None:
    assert load_settings(environ={}) == Settings()


def test_yaml_is_overlaid_by_upstream_names_which_are_overlaid_by_skalds_names(tmp_path: Path) -> None:
    path = _yaml(
        tmp_path,
        "dispatch:\n  strategy: random\n  interval_ms: 7000\n  batch_size: 10\n"
        "mongo:\n  database: from_yaml\n",
    )
    env = {
        "DISPATCHER_STRATEGY": "ROUND_ROBIN",
        "DISPATCHER_INTERVAL": "2",
        "SKALDS_DISPATCH__INTERVAL_MS": "1500",
        "DB_NAME": "from_upstream",
    }
    settings = load_settings(path, env)
    assert settings.dispatch.strategy is DispatchStrategy.ROUND_ROBIN  # upstream over YAML
    assert settings.dispatch.interval_ms == 1500  # SKALDS_* over upstream
    assert settings.dispatch.batch_size == 10  # YAML over default
    assert settings.mongo.database == "from_upstream"


def test_skalds_nested_names_reach_every_section() -> None:
    settings = load_settings(
        environ={
            "SKALDS_BACKENDS__REPOSITORY": "mongo",
            "SKALDS_BACKENDS__LIVE_STATE": "REDIS",
            "SKALDS_REDIS__PASSWORD": "s3cret",
            "SKALDS_NODE__LABELS": "zone=eu, gpu=yes",
            "SKALDS_NODE__WORKER_CLASSES": '["app.workers:Crawler", "app.workers:Sleeper"]',
            "SKALDS_LOGGING__JSON": "true",
            "SKALDS_ALERTS__FAILURE_RATE": "0.25",
            "SKALDS_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
        }
    )
    assert settings.backends.repository is Backend.MONGO
    assert settings.backends.live_state is Backend.REDIS
    assert settings.redis.password is not None
    assert settings.redis.password.get_secret_value() == "s3cret"
    assert settings.node.labels == {"zone": "eu", "gpu": "yes"}
    assert settings.node.worker_classes == ["app.workers:Crawler", "app.workers:Sleeper"]
    assert settings.logging.json_format is True
    assert settings.alerts.failure_rate == 0.25
    assert settings.kafka.bootstrap_servers == "k1:9092,k2:9092"


def test_upstream_names_are_understood_in_their_own_units() -> None:
    settings = load_settings(
        environ={
            "SKALD_ID": "skald-7",
            "SKALD_MODE": "EDGE",
            "LOG_LEVEL": "success",
            "LOG_SPLIT_WITH_WORKER_ID": "y",
            "LOG_ROTATION_MB": "20",
            "REDIS_HOST": "cache",
            "REDIS_PORT": "6380",
            "REDIS_KEY_TTL": "60",
            "KAFKA_HOST": "broker",
            "KAFKA_PORT": "19092",
            "KAFKA_USERNAME": "user",
            "KAFKA_PASSWORD": "pw",
            "KAFKA_TOPIC_PARTITIONS": "3",
            "MONGO_HOST": "mongodb://root:root@db:27017/",
            "SYSTEM_CONTROLLER_MODE": "dispatcher",
            "SYSTEM_CONTROLLER_PORT": "9000",
            "MONITOR_TASK_INTERVAL": "0.5",
            "MONITOR_HEARTBEAT_TIMEOUT": "5",
            "TASK_WORKER_RETRY": "2",
        }
    )
    assert (settings.node.id, settings.node.mode) == ("skald-7", NodeMode.EDGE)
    assert settings.logging.level is LogLevel.SUCCESS
    assert settings.logging.split_with_worker_id is True
    assert settings.logging.rotation_mb == 20
    assert settings.redis.url == "redis://cache:6380/0"
    assert settings.redis.heartbeat_ttl_ms == settings.redis.node_ttl_ms == 60_000
    assert settings.kafka.bootstrap_servers == "broker:19092"
    assert (settings.kafka.security_protocol, settings.kafka.sasl_mechanism) == ("SASL_SSL", "PLAIN")
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "pw"
    assert settings.kafka.partitions == 3
    assert settings.mongo.url == "mongodb://root:root@db:27017/"
    assert settings.controller.mode is ControllerMode.DISPATCHER
    assert settings.controller.port == 9000
    assert settings.monitor.interval_ms == 500
    assert settings.heartbeat.dead_after_ms == 5_000
    assert settings.heartbeat.policy().suspect_after_ms < 5_000  # kept below dead
    assert settings.dispatch.default_max_attempts == 3  # two retries after the first attempt


def test_upstream_names_never_switch_a_backend() -> None:
    settings = load_settings(
        environ={"KAFKA_HOST": "broker", "REDIS_HOST": "cache", "MONGO_HOST": "mongodb://db"}
    )
    assert settings.backends == BackendSettings()


def test_retry_minus_one_means_without_limit_and_an_empty_redis_host_means_no_redis() -> None:
    settings = load_settings(environ={"TASK_WORKER_RETRY": "-1", "REDIS_HOST": "", "REDIS_PORT": "7000"})
    assert settings.dispatch.default_max_attempts >= 1_000_000
    assert settings.redis.url == RedisSettings().url


@pytest.mark.parametrize(
    ("field", "value", "member"),
    [
        ("SKALDS_DISPATCH__STRATEGY", "Least_Tasks", DispatchStrategy.LEAST_TASKS),
        ("SKALDS_DISPATCH__OFFLINE_NODE_POLICY", "FAIL", OfflineNodePolicy.FAIL),
        ("SKALDS_CONTROLLER__MODE", "monitor", ControllerMode.MONITOR),
        ("SKALDS_NODE__MODE", "Single_Process", NodeMode.SINGLE_PROCESS),
        ("SKALDS_LOGGING__LEVEL", "warning", LogLevel.WARNING),
        ("SKALDS_BACKENDS__EVENT_BUS", "Kafka", Backend.KAFKA),
    ],
)
def test_enum_values_are_case_insensitive(field: str, value: str, member: object) -> None:
    section, name = field.removeprefix("SKALDS_").lower().split("__")
    assert getattr(getattr(load_settings(environ={field: value}), section), name) is member


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DISPATCHER_STRATEGY": "fastest"}, r"DISPATCHER_STRATEGY='fastest': .*'ROUND_ROBIN'"),
        ({"SKALDS_DISPATCH__STRATEGY": "fastest"}, r"SKALDS_DISPATCH__STRATEGY='fastest': .*'LEAST_TASKS'"),
        (
            {"SKALDS_BACKENDS__REPOSITORY": "redis"},
            r"SKALDS_BACKENDS__REPOSITORY='redis': must be one of memory, mongo",
        ),
        ({"SKALDS_KAFKA__PARTITIONS": "0"}, r"SKALDS_KAFKA__PARTITIONS='0': .*greater than 0"),
        ({"MONITOR_TASK_INTERVAL": "soon"}, r"MONITOR_TASK_INTERVAL='soon': expected a number of seconds"),
        ({"TASK_WORKER_RETRY": "-3"}, r"TASK_WORKER_RETRY='-3': expected -1"),
        ({"KAFKA_HOST": "b", "KAFKA_PORT": "x"}, r"KAFKA_PORT='x': expected a port number"),
        (
            {"SKALDS_DISPATCH__STRATEGYY": "x"},
            r"SKALDS_DISPATCH__STRATEGYY: unknown setting .*known here: .*strategy",
        ),
        ({"SKALDS_DISPATCH_STRATEGY": "x"}, r"double underscore: SKALDS_DISPATCH__STRATEGY"),
        ({"SKALDS_NODE__WORKER_CLASSES": "app.workers"}, r"'package.module:ClassName'"),
        ({"SKALDS_REDIS__PASSWORD": "[1"}, r"SKALDS_REDIS__PASSWORD: invalid JSON"),
    ],
)
def test_invalid_environment_values_name_the_variable(env: dict[str, str], expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        load_settings(environ=env)


def test_invalid_yaml_values_name_the_dotted_setting(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "dispatch:\n  strategy: fastest\nheartbeat:\n  suspect_afterms: 1\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(path, {})
    assert str(path) in str(caught.value)
    assert any(p.startswith("dispatch.strategy='fastest': Input should be") for p in caught.value.problems)
    assert any(
        p.startswith("heartbeat.suspect_afterms: unknown setting") and "suspect_after_ms" in p
        for p in caught.value.problems
    )


def test_secrets_are_not_echoed_in_errors(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(_yaml(tmp_path, "controller:\n  api_key: [hunter2]\n"), {})
    assert "hunter2" not in str(caught.value)
    assert "controller.api_key" in str(caught.value)


def test_dead_must_come_after_suspect() -> None:
    with pytest.raises(SettingsError, match=r"SKALDS_HEARTBEAT__DEAD_AFTER_MS='5000': must be greater"):
        load_settings(environ={"SKALDS_HEARTBEAT__DEAD_AFTER_MS": "5000"})


def test_a_missing_file_is_refused_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SettingsError, match=re.escape(str(missing))):
        load_settings(missing, {})


@pytest.mark.parametrize("text", ["dispatch: [unclosed\n", "- just\n- a list\n"])
def test_a_file_that_is_not_a_settings_mapping_is_refused_naming_the_path(tmp_path: Path, text: str) -> None:
    path = _yaml(tmp_path, text)
    with pytest.raises(SettingsError, match=re.escape(str(path))):
        load_settings(path, {})


def test_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_settings(_yaml(tmp_path, ""), {}) == Settings()


def test_settings_error_is_a_skalds_error() -> None:
    assert issubclass(SettingsError, SkaldsError)


@pytest.mark.parametrize(
    "origins",
    ["http*", "*://*", "https://*.example", "https://a.example/path", "a.example", "*, https://a.b"],
)
def test_cors_origins_that_would_be_patterns_are_refused_at_start_up(origins: str) -> None:
    """The CORS layer reads a ``*`` inside an entry as a wildcard: ``http*`` would let every site in."""
    with pytest.raises(SettingsError, match="SKALDS_CONTROLLER__CORS_ORIGINS"):
        load_settings(environ={"SKALDS_CONTROLLER__CORS_ORIGINS": origins})


def test_cors_takes_exact_origins_or_one_star_alone() -> None:
    assert load_settings(environ={"SKALDS_CONTROLLER__CORS_ORIGINS": "*"}).controller.cors_origins == ["*"]
    allowed = load_settings(
        environ={"SKALDS_CONTROLLER__CORS_ORIGINS": "https://a.example, https://b.example"}
    )
    assert allowed.controller.cors_origins == ["https://a.example", "https://b.example"]
