"""Settings, validated once at start-up from YAML and the environment; bad values are refused by name.

Pydantic lives here, at the edge; the domain receives plain frozen policy objects built from these.

Precedence: ``SKALDS_<SECTION>__<FIELD>`` variables (and the aliases ``SKALDS_KAFKA_BOOTSTRAP``,
``SKALDS_REDIS_URL``, ``SKALDS_MONGO_URL``) over upstream's variable names (``KAFKA_HOST``, ``DB_NAME``, ...)
over the YAML file over defaults. Empty variables count as unset. Upstream names only fill in connection
details: they never switch a backend, so everything stays in memory unless ``backends`` says otherwise.
``MONITOR_HEARTBEAT_TIMEOUT``, which upstream never read, sets ``heartbeat.dead_after_ms`` here (and lowers
``suspect_after_ms`` to half of it unless that is set too). ``TASK_WORKER_RETRY`` -1 means unlimited.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal

import pydantic
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from skalds.adapters.logs import LogSetup, level_number, retention_seconds
from skalds.adapters.process.output_capture import CaptureSetup
from skalds.application.drafts import DraftLimits
from skalds.application.reconciling import OfflineNodePolicy
from skalds.domain.dispatch import DispatchStrategy, ResourceThresholds
from skalds.domain.errors import SkaldsError
from skalds.domain.heartbeat import HeartbeatPolicy
from skalds.domain.nodes import NodeMode
from skalds.domain.retry import RetryPolicy

Positive = Annotated[int, Field(gt=0)]
Percent = Annotated[float, Field(gt=0, le=100)]
UNLIMITED_ATTEMPTS = 1_000_000_000  # what TASK_WORKER_RETRY=-1 becomes
_WORKER_CLASS = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_SECRETS = frozenset({"password", "sasl_password", "api_key"})


class SettingsError(SkaldsError):
    """Settings could not be read or are invalid; every problem names the setting as the user wrote it."""

    def __init__(self, problems: str | Sequence[str], source: str | None = None):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        where = f" ({source})" if source else ""
        super().__init__(f"invalid settings{where}: " + "; ".join(self.problems))


def _any_case(enum: type[StrEnum]) -> BeforeValidator:
    """Accept a value or name in any case; upstream wrote both ``round_robin`` and ``ROUND_ROBIN``."""

    def parse(value: object) -> object:
        if isinstance(value, str):
            wanted = value.strip().casefold()
            for member in enum:
                if wanted in (member.value.casefold(), member.name.casefold()):
                    return member
        return value

    return BeforeValidator(parse)


class Backend(StrEnum):
    MEMORY = "memory"
    KAFKA = "kafka"
    REDIS = "redis"
    MONGO = "mongo"
    SQLITE = "sqlite"


class ShutdownPolicy(StrEnum):
    DRAIN = "drain"  # take no new work, let running tasks finish (up to drain_timeout_ms), cancel the rest
    HAND_BACK = "hand_back"  # stop workers now and leave; the monitor re-queues their tasks


class ControllerMode(StrEnum):
    CONTROLLER = "CONTROLLER"  # API only
    MONITOR = "MONITOR"  # API + monitor + dashboard + SSE
    DISPATCHER = "DISPATCHER"  # all of that plus the dispatcher


class LogLevel(StrEnum):
    TRACE = "TRACE"
    DEBUG = "DEBUG"
    INFO = "INFO"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class BackendSettings(_Section):
    """One backend per port; a port refuses a technology that cannot serve it."""

    ALLOWED: ClassVar[Mapping[str, frozenset[Backend]]] = MappingProxyType(
        {
            "repository": frozenset({Backend.MEMORY, Backend.MONGO, Backend.SQLITE}),
            "live_state": frozenset({Backend.MEMORY, Backend.REDIS}),
            "event_bus": frozenset({Backend.MEMORY, Backend.KAFKA}),
        }
    )
    repository: Annotated[Backend, _any_case(Backend)] = Backend.MEMORY
    live_state: Annotated[Backend, _any_case(Backend)] = Backend.MEMORY
    event_bus: Annotated[Backend, _any_case(Backend)] = Backend.MEMORY

    @field_validator("*")
    @classmethod
    def _supported(cls, value: Backend, info: ValidationInfo) -> Backend:
        allowed = cls.ALLOWED[info.field_name or ""]
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(sorted(allowed))}")
        return value


class KafkaSettings(_Section):
    bootstrap_servers: Annotated[str, Field(min_length=1)] = "localhost:9092"
    topic_prefix: str = ""
    partitions: Positive = 6  # command topics, keyed by task id
    event_partitions: Positive = 1  # change-event topics: every process reads them all, in order
    replication_factor: Positive = 1
    client_id: str = "skalds"
    consumer_group_prefix: str = "skalds"  # group id = prefix + node id: stable across restarts
    security_protocol: str | None = None  # passed through to the client, e.g. SASL_SSL
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    client_config: dict[str, str] = Field(default_factory=dict)  # any other librdkafka property (ssl.*)

    def client_properties(self) -> dict[str, str]:
        """librdkafka properties for every client: security settings first, ``client_config`` over them."""
        named = {
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password.get_secret_value() if self.sasl_password else None,
        }
        return {key: value for key, value in named.items() if value} | dict(self.client_config)


class RedisSettings(_Section):
    url: Annotated[str, Field(min_length=1)] = "redis://localhost:6379/0"
    password: SecretStr | None = None
    key_prefix: str = "skalds:"
    heartbeat_ttl_ms: Positive = 3_600_000
    node_ttl_ms: Positive = 3_600_000
    heartbeat_history: Positive = 50  # reports kept per task for /api/tasks/{id}/heartbeat


class MongoSettings(_Section):
    url: Annotated[str, Field(min_length=1)] = "mongodb://localhost:27017"
    database: Annotated[str, Field(min_length=1)] = "skalds"
    collection: Annotated[str, Field(min_length=1)] = "tasks"
    server_selection_timeout_ms: Positive = 5_000  # how soon a call fails when the server is down
    # How a task write checks its version: one conditional update ("conditional": MongoDB, and the FerretDB
    # that ci/services.py builds), or a claim first ("claims": any FerretDB 1.x). "auto" asks the server.
    compare_and_set: Literal["auto", "conditional", "claims"] = "auto"


class SqliteSettings(_Section):
    # the task file of backends.repository = sqlite (WAL mode; a -wal and a -shm file sit beside it);
    # `skalds up` puts it in --data-dir (default .skalds/)
    path: Path = Path(".skalds/tasks.sqlite3")


class HeartbeatSettings(_Section):
    suspect_after_ms: Positive = 5_000
    dead_after_ms: Positive = 10_000
    stall_after_ms: Positive | None = 300_000
    first_heartbeat_grace_ms: Annotated[int, Field(ge=0)] = 30_000

    @field_validator("dead_after_ms")
    @classmethod
    def _after_suspect(cls, value: int, info: ValidationInfo) -> int:
        suspect = info.data.get("suspect_after_ms")
        if suspect is not None and value <= suspect:
            raise ValueError(f"must be greater than suspect_after_ms ({suspect} ms)")
        return value

    def policy(self) -> HeartbeatPolicy:
        return HeartbeatPolicy(
            suspect_after_ms=self.suspect_after_ms,
            dead_after_ms=self.dead_after_ms,
            stall_after_ms=self.stall_after_ms,
            first_heartbeat_grace_ms=self.first_heartbeat_grace_ms,
        )


class DispatchSettings(_Section):
    strategy: Annotated[DispatchStrategy, _any_case(DispatchStrategy)] = DispatchStrategy.LEAST_TASKS
    max_cpu_percent: Percent | None = None
    max_memory_percent: Percent | None = None
    interval_ms: Positive = 5_000  # the safety-net sweep; events trigger dispatch sooner
    batch_size: Positive = 1_000
    assign_timeout_ms: Positive = 60_000
    offline_node_policy: Annotated[OfflineNodePolicy, _any_case(OfflineNodePolicy)] = (
        OfflineNodePolicy.REQUEUE
    )
    default_max_attempts: Positive = 3

    def thresholds(self) -> ResourceThresholds:
        return ResourceThresholds(
            max_cpu_percent=self.max_cpu_percent, max_memory_percent=self.max_memory_percent
        )


class RetrySettings(_Section):
    base_delay_ms: Annotated[int, Field(ge=0)] = 5_000
    factor: Annotated[float, Field(ge=1)] = 2.0
    max_delay_ms: Annotated[int, Field(ge=0)] = 300_000

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_delay_ms=self.base_delay_ms, factor=self.factor, max_delay_ms=self.max_delay_ms
        )


class MonitorSettings(_Section):
    interval_ms: Positive = 3_000
    cancel_grace_ms: Positive = 30_000  # after a cancel request, before the monitor escalates
    pause_grace_ms: Positive = 30_000
    heartbeat_period_ms: Positive = 1_000  # how often nodes report their workers' heartbeats
    # The monitor follows task events and re-reads only changed tasks; a full read this often repairs what a
    # missed event left stale.
    resync_ms: Positive = 60_000


class AlertSettings(_Section):
    failure_rate: Annotated[float, Field(ge=0, le=1)] = 0.5
    failure_window_ms: Positive = 300_000
    failure_min_samples: Positive = 5
    max_cpu_percent: Percent = 90
    max_memory_percent: Percent = 90
    history_limit: Positive = 1_000
    webhook_url: str | None = None


def is_bundle(folder: str | Path) -> bool:
    """A dashboard bundle: ``index.html`` and ``assets/``, as ours and upstream's prebuilt one."""
    path = Path(folder).expanduser()
    return (path / "index.html").is_file() and (path / "assets").is_dir()


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+", re.ASCII)  # scheme://host[:port], nothing else


class LimitsSettings(_Section):
    """How big a task a client may create (a 422 naming the field and the setting beyond them)."""

    text_chars: Annotated[int, Field(gt=0)] = 10_000  # name, description, source, each
    dependencies: Annotated[int, Field(ge=0)] = 1_000
    labels: Annotated[int, Field(ge=0)] = 64  # required labels per task
    label_chars: Annotated[int, Field(gt=0)] = 200  # a label's key or value, a dependency's id
    attachments_bytes: Annotated[int, Field(gt=0, le=1_048_576)] = 1_048_576  # as compact JSON
    # a request body as sent (413 beyond): one create with the largest attachments fits in the default
    body_bytes: Annotated[int, Field(ge=1_024)] = 2 * 1_048_576
    # POST /api/tasks/batch's body: 16 KiB per item of a full batch of 1,000 on average
    batch_body_bytes: Annotated[int, Field(ge=1_024)] = 16 * 1_048_576
    # a worker's checkpoint as JSON (context.save_checkpoint raises beyond); checked in the worker process
    checkpoint_bytes: Annotated[int, Field(gt=0, le=16 * 1_048_576)] = 256 * 1_024

    def drafts(self) -> DraftLimits:
        return DraftLimits(**self.model_dump(exclude={"body_bytes", "batch_body_bytes", "checkpoint_bytes"}))


class ControllerSettings(_Section):
    mode: Annotated[ControllerMode, _any_case(ControllerMode)] = ControllerMode.CONTROLLER
    host: str = "127.0.0.1"
    port: Annotated[int, Field(gt=0, le=65_535)] = 8000
    api_key: SecretStr | None = None
    protect_reads: bool = False  # with an api_key: reads (and SSE, via ?apiKey=) need it too
    cors_origins: list[str] = Field(default_factory=list)  # exact origins, or ["*"] alone
    # Host names the API answers; empty: the loopback names when bound to loopback, else any (docs/api.md)
    allowed_hosts: list[str] = Field(default_factory=list)
    max_batch_tasks: Annotated[int, Field(gt=0, le=10_000)] = 1_000  # POST /api/tasks/batch, per request
    # another dashboard bundle served at /dashboard instead of ours: a folder with index.html and assets/
    # (upstream's prebuilt one works unmodified; docs/upstream.md)
    dashboard_dir: Path | None = None

    @field_validator("dashboard_dir")
    @classmethod
    def _a_bundle(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        if not is_bundle(value):
            raise ValueError(f"{value} is not a dashboard bundle: it needs index.html and assets/")
        return value.expanduser().resolve()

    @field_validator("cors_origins", "allowed_hosts", mode="before")
    @classmethod
    def _origins_from_text(cls, value: object) -> object:
        return (
            [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value
        )

    @field_validator("cors_origins")
    @classmethod
    def _exact_origins(cls, value: list[str]) -> list[str]:
        """Exact origins (``https://ops.example.com:8443``), or one ``*`` alone: the CORS layer reads any
        other ``*`` as a pattern, so ``http*`` or ``*://*`` would let every site in."""
        if value == ["*"]:
            return value
        bad = [origin for origin in value if not _ORIGIN.fullmatch(origin)]
        if bad:
            raise ValueError(
                f"{', '.join(map(repr, bad))}: list exact origins (scheme://host[:port], no path or "
                "wildcard), or '*' alone for every origin"
            )
        return [origin.lower() for origin in value]


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, e.g. a container's cpuset), else the machine's."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class NodeSettings(_Section):
    id: Annotated[str, Field(min_length=1)] | None = None  # None: generate one at start-up
    mode: Annotated[NodeMode, _any_case(NodeMode)] = NodeMode.NODE
    # how many tasks at once: "cpus" (the CPUs this process may use, like Celery's default concurrency),
    # a number, or "unlimited" (also 0 or null: only ever when set explicitly)
    capacity: Annotated[int, Field(ge=0)] | Literal["cpus", "unlimited"] = "cpus"
    labels: dict[str, str] = Field(default_factory=dict)
    yaml_file: str | None = None
    worker_classes: list[str] = Field(default_factory=list)
    on_shutdown: Annotated[ShutdownPolicy, _any_case(ShutdownPolicy)] = ShutdownPolicy.DRAIN
    drain_timeout_ms: Annotated[int, Field(ge=0)] = 30_000  # then the rest is cancelled
    cancel_grace_ms: Positive = 10_000  # cooperative cancel, then SIGTERM
    kill_grace_ms: Positive = 5_000  # after SIGTERM, then SIGKILL
    start_method: Literal["forkserver", "spawn"] = "forkserver"

    @field_validator("capacity", mode="before")
    @classmethod
    def _capacity_from_text(cls, value: object) -> object:
        if value is None:
            return "unlimited"
        if isinstance(value, str):
            value = value.strip().lower()
            if value in ("cpus", "unlimited"):
                return value
            value = int(value) if value.isdigit() else value
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise ValueError("must be a number of tasks (0: no limit), 'cpus' or 'unlimited'")

    def slots(self) -> int | None:
        """The node's capacity as a number of tasks; None means no limit."""
        if self.capacity == "cpus":
            return usable_cpus()
        if self.capacity in ("unlimited", 0):
            return None
        return int(self.capacity)

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_from_text(cls, value: object) -> object:
        """``zone=eu,gpu=yes`` from an environment variable."""
        if isinstance(value, str):
            pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError("expected key=value pairs separated by commas")
            return {key.strip(): val.strip() for key, val in pairs}
        return value

    @field_validator("worker_classes", mode="before")
    @classmethod
    def _classes_from_text(cls, value: object) -> object:
        return (
            [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value
        )

    @field_validator("worker_classes")
    @classmethod
    def _import_paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not _WORKER_CLASS.match(path):
                raise ValueError(f"{path!r} is not an import path like 'package.module:ClassName'")
        return value


class LoggingSettings(_Section):
    """Console by default; ``path`` adds size-rotated files (upstream's default was ``logs``: set
    LOG_PATH=logs for its behaviour). ``split_with_worker_id`` gives each worker its own file there."""

    level: Annotated[LogLevel, _any_case(LogLevel)] = LogLevel.INFO
    path: str = ""
    rotation_mb: Positive = 10
    retention: str = "3 days"  # "12 hours", "1 week"; a bare number is days; "0" keeps files forever
    split_with_worker_id: bool = False
    json_format: bool = Field(default=False, alias="json")  # ``json`` would shadow BaseModel.json

    @field_validator("retention")
    @classmethod
    def _a_duration(cls, value: str) -> str:
        retention_seconds(value)  # raises ValueError naming what it expected
        return value

    def setup(self) -> LogSetup:
        return LogSetup(
            level=level_number(self.level.value),
            json_lines=self.json_format,
            directory=self.path or None,
            rotation_bytes=self.rotation_mb * 1024 * 1024,
            retention_s=retention_seconds(self.retention),
        )

    def worker_setup(self) -> LogSetup | None:
        """What each worker process gets: its own file when split_with_worker_id and a path are set."""
        return self.setup() if self.split_with_worker_id and self.path else None


class TaskLogSettings(_Section):
    """Each task's output (docs/logs.md): what a worker's ``logging`` records (from ``level`` up) and prints
    its node captures and ships, and how much of it the control plane keeps: the last ``lines_per_attempt``
    lines of each attempt, for ``retention`` (Redis; memory keeps at most a million lines in all)."""

    capture: bool = True
    level: Annotated[LogLevel, _any_case(LogLevel)] = LogLevel.INFO
    lines_per_attempt: Positive = 10_000
    retention: str = "7 days"
    max_line_chars: Positive = 8_000  # a longer line is cut, and says so

    @field_validator("retention")
    @classmethod
    def _a_retention(cls, value: str) -> str:
        if retention_seconds(value) is None:
            raise ValueError("expected a duration like '7 days' (task output is never kept forever)")
        return value

    @property
    def retention_ms(self) -> int:
        return round((retention_seconds(self.retention) or 0) * 1000)

    def capture_setup(self) -> CaptureSetup | None:
        if not self.capture:
            return None
        return CaptureSetup(level=level_number(self.level.value), max_line_chars=self.max_line_chars)


class HistorySettings(_Section):
    """What the controller keeps for the dashboard's charts and task timelines (docs/dashboard.md): per task
    the last ``changes_per_task`` lifecycle changes and ``progress_points_per_task`` progress points (one
    per ``progress_every_ms`` at most), for ``retention`` (Redis; memory keeps 100,000 tasks' at most), and
    the system's changes and statuses (counted every ``sample_every_ms``) per minute for ``minutes_kept``
    minutes."""

    changes_per_task: Positive = 500
    progress_points_per_task: Positive = 720
    progress_every_ms: Positive = 5_000
    retention: str = "7 days"
    minutes_kept: Positive = 1_440
    sample_every_ms: Positive = 20_000  # how often the tasks per status are counted for the status chart

    @field_validator("retention")
    @classmethod
    def _a_retention(cls, value: str) -> str:
        if retention_seconds(value) is None:
            raise ValueError("expected a duration like '7 days' (task history is never kept forever)")
        return value

    @property
    def retention_ms(self) -> int:
        return round((retention_seconds(self.retention) or 0) * 1000)


class Settings(_Section):
    backends: BackendSettings = BackendSettings()
    kafka: KafkaSettings = KafkaSettings()
    redis: RedisSettings = RedisSettings()
    mongo: MongoSettings = MongoSettings()
    sqlite: SqliteSettings = SqliteSettings()
    heartbeat: HeartbeatSettings = HeartbeatSettings()
    dispatch: DispatchSettings = DispatchSettings()
    retry: RetrySettings = RetrySettings()
    monitor: MonitorSettings = MonitorSettings()
    alerts: AlertSettings = AlertSettings()
    controller: ControllerSettings = ControllerSettings()
    limits: LimitsSettings = LimitsSettings()
    node: NodeSettings = NodeSettings()
    logging: LoggingSettings = LoggingSettings()
    task_logs: TaskLogSettings = TaskLogSettings()
    history: HistorySettings = HistorySettings()


# ---- loading -------------------------------------------------------------------------------------------

Loc = tuple[str, ...]
Sources = dict[Loc, tuple[str, str]]  # setting -> (environment variable, its text)


def _ms(seconds: str) -> int:
    try:
        return round(float(seconds) * 1000)
    except (ValueError, OverflowError):
        raise ValueError("expected a number of seconds") from None


def _attempts(retries: str) -> int:
    try:
        count = int(retries)
    except ValueError:
        count = -2
    if count < -1:
        raise ValueError("expected -1 (retry without limit) or a number of retries >= 0")
    return UNLIMITED_ATTEMPTS if count == -1 else count + 1


def _port(value: str) -> int:
    if not value.strip().isdigit() or not 0 < int(value) < 65_536:
        raise ValueError("expected a port number (1-65535)")
    return int(value)


# Upstream's names (reference §10.2): name -> (setting, conversion); host and port pairs build one URL.
_UPSTREAM: tuple[tuple[str, Loc, Callable[[str], object]], ...] = (
    ("SKALD_ID", ("node", "id"), str),
    ("SKALD_MODE", ("node", "mode"), str),
    ("YAML_FILE", ("node", "yaml_file"), str),
    ("LOG_LEVEL", ("logging", "level"), str),
    ("LOG_PATH", ("logging", "path"), str),
    ("LOG_RETENTION", ("logging", "retention"), str),
    ("LOG_ROTATION_MB", ("logging", "rotation_mb"), str),
    ("LOG_SPLIT_WITH_WORKER_ID", ("logging", "split_with_worker_id"), str),
    ("REDIS_PASSWORD", ("redis", "password"), str),
    ("REDIS_KEY_TTL", ("redis", "heartbeat_ttl_ms"), _ms),
    ("REDIS_KEY_TTL", ("redis", "node_ttl_ms"), _ms),
    ("KAFKA_USERNAME", ("kafka", "sasl_username"), str),
    ("KAFKA_PASSWORD", ("kafka", "sasl_password"), str),
    ("KAFKA_TOPIC_PARTITIONS", ("kafka", "partitions"), str),
    ("KAFKA_REPLICATION_FACTOR", ("kafka", "replication_factor"), str),
    ("MONGO_HOST", ("mongo", "url"), str),
    ("DB_NAME", ("mongo", "database"), str),
    ("SYSTEM_CONTROLLER_MODE", ("controller", "mode"), str),
    ("SYSTEM_CONTROLLER_HOST", ("controller", "host"), str),
    ("SYSTEM_CONTROLLER_PORT", ("controller", "port"), str),
    ("MONITOR_TASK_INTERVAL", ("monitor", "interval_ms"), _ms),
    ("MONITOR_HEARTBEAT_TIMEOUT", ("heartbeat", "dead_after_ms"), _ms),
    ("DISPATCHER_INTERVAL", ("dispatch", "interval_ms"), _ms),
    ("DISPATCHER_STRATEGY", ("dispatch", "strategy"), str),
    ("TASK_WORKER_RETRY", ("dispatch", "default_max_attempts"), _attempts),
    # upstream documented it (its sample: a path into its own package) and never read it: a value that
    # names no bundle is left alone, with a warning (ignored_upstream_names), rather than refused
    ("DASHBOARD_STATIC_PATH", ("controller", "dashboard_dir"), lambda v: v if is_bundle(v) else None),
)
UPSTREAM_IGNORED: Mapping[str, str] = MappingProxyType(
    {
        "SKALD_ENV": "it only chose whether a 500 showed its detail; Skalds never answers a 500 with one",
        "REDIS_SYNC_PERIOD": "nodes report their workers every monitor.heartbeat_period_ms",
        "MONITOR_SKALD_INTERVAL": "nodes are judged in every monitor cycle (monitor.interval_ms)",
        "UVICORN_WORKERS": "a controller is one API process: run more controllers behind a proxy",
        "WEB_CONCURRENCY": "a controller is one API process: run more controllers behind a proxy",
    }
)
"""Upstream's names that set nothing here, and why: each one set at start-up is logged as a warning."""
_HOST_PORT: tuple[tuple[str, str, str, Loc, str], ...] = (
    ("REDIS_HOST", "REDIS_PORT", "6379", ("redis", "url"), "redis://{}:{}/0"),
    ("KAFKA_HOST", "KAFKA_PORT", "9092", ("kafka", "bootstrap_servers"), "{}:{}"),
)
_ALIASES: tuple[tuple[str, Loc], ...] = (
    ("SKALDS_KAFKA_BOOTSTRAP", ("kafka", "bootstrap_servers")),
    ("SKALDS_REDIS_URL", ("redis", "url")),
    ("SKALDS_MONGO_URL", ("mongo", "url")),
)


def _put(raw: dict[str, Any], loc: Loc, value: object, sources: Sources, source: tuple[str, str]) -> None:
    node = raw
    for part in loc[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[loc[-1]] = value
    sources[loc] = source


def _overlay_upstream(raw: dict[str, Any], env: Mapping[str, str], sources: Sources) -> None:
    def text(name: str) -> str | None:
        return env.get(name) or None

    def convert(name: str, value: str, conversion: Callable[[str], object]) -> object:
        try:
            return conversion(value)
        except ValueError as exc:
            raise SettingsError([f"{name}={value!r}: {exc}"]) from None

    for host_name, port_name, default_port, loc, form in _HOST_PORT:
        host, port = text(host_name), text(port_name)
        if host or (port and host_name not in env):  # an empty host means "not used": leave it alone
            url = form.format(host or "localhost", convert(port_name, port or default_port, _port))
            _put(raw, loc, url, sources, (f"{host_name}/{port_name}", url))
    for name, loc, conversion in _UPSTREAM:
        if (value := text(name)) is not None:
            _put(raw, loc, convert(name, value, conversion), sources, (name, value))
    if text("KAFKA_USERNAME"):  # upstream's SASL_SSL/PLAIN, unless the YAML chose otherwise
        kafka = raw["kafka"]
        kafka.setdefault("security_protocol", "SASL_SSL")
        kafka.setdefault("sasl_mechanism", "PLAIN")
    timeout = sources.get(("heartbeat", "dead_after_ms"))  # only MONITOR_HEARTBEAT_TIMEOUT so far
    if timeout and "suspect_after_ms" not in raw["heartbeat"]:  # keep suspect below dead
        suspect = min(HeartbeatSettings().suspect_after_ms, raw["heartbeat"]["dead_after_ms"] // 2)
        _put(raw, ("heartbeat", "suspect_after_ms"), suspect, sources, timeout)


def _overlay_skalds(raw: dict[str, Any], env: Mapping[str, str], sources: Sources) -> None:
    for name, loc in _ALIASES:
        if value := env.get(name):
            _put(raw, loc, value, sources, (name, value))
    sections = Settings.model_fields
    for name in sorted(env):
        if not name.startswith("SKALDS_") or not env[name] or name in dict(_ALIASES):
            continue
        rest, value = name.removeprefix("SKALDS_").lower(), env[name]
        if "__" not in rest:
            section = next((section for section in sections if rest.startswith(f"{section}_")), None)
            if section:  # a likely typo, not someone else's variable
                fixed = f"SKALDS_{section}__{rest.removeprefix(section + '_')}".upper()
                raise SettingsError(f"{name}: not a setting; nested names take a double underscore: {fixed}")
            continue
        parsed: object = value
        if value.lstrip().startswith(("[", "{")):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                raise SettingsError([f"{name}: invalid JSON: {exc}"]) from None
        _put(raw, tuple(rest.split("__")), parsed, sources, (name, value))


def _known_fields(loc: Loc) -> str:
    model: Any = Settings
    for part in loc:
        field = (
            model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        )
        model = field.annotation if field else None
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return ""
    return ", ".join(sorted(field.alias or name for name, field in model.model_fields.items()))


def _problem(error: Any, sources: Sources) -> str:
    loc = tuple(str(part) for part in error["loc"])
    found = next((sources[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in sources), None)
    found = found or next((source for key, source in sources.items() if key[: len(loc)] == loc), None)
    name, shown = (found[0], found[1]) if found else (".".join(loc) or "settings", error.get("input"))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        named = f" {'.'.join(loc)!r}" if found else ""
        return f"{name}: unknown setting{named}; known here: {_known_fields(loc[:-1])}"
    if _SECRETS.intersection(loc) or isinstance(shown, dict):
        return f"{name}: {message}"
    return f"{name}={shown!r}: {message}"


def ignored_upstream_names(env: Mapping[str, str]) -> list[str]:
    """A line for each of upstream's names in ``env`` that has no effect here, saying why."""
    lines = [
        f"{name} is set but has no effect in Skalds: {why}"
        for name, why in UPSTREAM_IGNORED.items()
        if env.get(name)
    ]
    bundle = env.get("DASHBOARD_STATIC_PATH")
    if bundle and not is_bundle(bundle):
        lines.append(
            f"DASHBOARD_STATIC_PATH={bundle!r} is not a dashboard bundle (index.html and assets/): "
            "Skalds serves its own dashboard"
        )
    return lines


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """The YAML file (if any) overlaid with the environment (``os.environ`` unless given), validated."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError([f"cannot read settings file: {exc.strerror}"], str(path)) from None
        except yaml.YAMLError as exc:
            raise SettingsError([f"invalid YAML: {exc}"], str(path)) from None
        if loaded is not None and not isinstance(loaded, dict):
            raise SettingsError([f"expected a mapping of sections, got {type(loaded).__name__}"], str(path))
        raw = loaded or {}
    sources: Sources = {}
    _overlay_upstream(raw, env, sources)
    _overlay_skalds(raw, env, sources)
    try:
        return Settings.model_validate(raw)
    except pydantic.ValidationError as exc:
        source = f"{path} and the environment" if path is not None else None
        raise SettingsError([_problem(error, sources) for error in exc.errors()], source) from None


def environment_names() -> dict[Loc, list[str]]:
    """Each setting's environment variables: ours (``SKALDS_<SECTION>__<FIELD>``), the short aliases the
    services script exports, and upstream's names (with their units: upstream gave seconds)."""
    names: dict[Loc, list[str]] = {}
    for section, field in Settings.model_fields.items():
        model: Any = field.annotation
        for name in model.model_fields:
            names[(section, name)] = [f"SKALDS_{section}__{name}".upper()]
    for alias, loc in _ALIASES:
        names[loc].append(alias)
    for host, port, _, loc, _ in _HOST_PORT:
        names[loc].append(f"{host} + {port}")
    for upstream, loc, conversion in _UPSTREAM:
        names[loc].append(f"{upstream} (seconds)" if conversion is _ms else upstream)
    return names
