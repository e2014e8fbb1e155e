"""The local platform: a real Apache Kafka 4 broker (KRaft, single node) and a real Redis, no Docker.

Kafka runs from the official `org.apache.kafka:kafka_2.13` jars that Maven resolves from
`deploy/kafka/pom.xml` into `<home>/kafka/libs` (git-ignored); the storage is formatted with
`kafka.tools.StorageTool format --standalone` and the broker started with `kafka.Kafka`. Redis is
Debian's `redis-server`, installed with apt-get when missing. Both bind to 127.0.0.1 only.

When `KAFKA_BOOTSTRAP_SERVERS` / `REDIS_URL` are set, those endpoints are used and nothing starts.

`secure=True` (`creditwindow dev up --secure`) starts the broker with a SASL_SSL listener, SCRAM
users, TLS and ACLs instead (devtools/kafka_security.py); a broker formatted that way stays secured.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devtools.kafka_security import ADMIN, PRINCIPALS, SecureKafka, create_acls, fleet_acls
from shared.messaging import aiokafka_kwargs, ensure_topics
from shared.settings import REPO_ROOT, Settings

__all__ = ["Component", "LocalPlatform", "PlatformError", "port_open", "process_alive", "read_pid", "stop_pid"]

POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
KAFKA_MAIN = "kafka.Kafka"


class PlatformError(RuntimeError):
    """A problem the user can fix; the message says how."""


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    address: str
    running: bool
    pid: int | None
    managed: bool
    detail: str = ""


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def process_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _java_major(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=20).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


class LocalPlatform:
    """Start, stop and inspect the local Kafka broker and Redis. Every operation is idempotent."""

    def __init__(self, settings: Settings, say: Callable[[str], None] = print, *, secure: bool | None = None) -> None:
        self.settings = settings
        self.say = say
        self.home = settings.home
        self.kafka_dir = self.home / "kafka"
        self.redis_dir = self.home / "redis"
        self.security = SecureKafka(self.kafka_dir / f"secure-{settings.kafka_port}")
        # None: as the broker was formatted (secured once, secured for good).
        self.secure = self.security.exists if secure is None else secure

    @property
    def admin_settings(self) -> Settings:
        """What the platform itself connects with: the broker's admin when it is secured."""
        if not self.secure or self.kafka_external:
            return self.settings
        return self.security.client_settings(self.settings, ADMIN, port=self.settings.kafka_port)

    # --- facts ---------------------------------------------------------------------------------

    @property
    def kafka_external(self) -> bool:
        return self.settings.kafka_bootstrap_servers is not None

    @property
    def redis_external(self) -> bool:
        return self.settings.redis_url is not None

    @property
    def _kafka_pidfile(self) -> Path:
        return self.kafka_dir / f"kafka-{self.settings.kafka_port}.pid"

    @property
    def _redis_pidfile(self) -> Path:
        return self.redis_dir / f"redis-{self.settings.redis_port}.pid"

    def status(self) -> list[Component]:
        s = self.settings
        kafka_pid = None if self.kafka_external else read_pid(self._kafka_pidfile)
        redis_pid = None if self.redis_external else read_pid(self._redis_pidfile)
        return [
            Component(
                "kafka",
                s.kafka_servers,
                self._kafka_answers(timeout=5),
                kafka_pid if process_alive(kafka_pid) else None,
                not self.kafka_external,
                "external (KAFKA_BOOTSTRAP_SERVERS)" if self.kafka_external
                else f"KRaft{', SASL_SSL + ACLs' if self.secure else ''}, data in {self.kafka_dir / 'data'}",
            ),  # fmt: skip
            Component(
                "redis",
                s.redis_dsn_masked,
                self._redis_answers(),
                redis_pid if process_alive(redis_pid) else None,
                not self.redis_external,
                "external (REDIS_URL)" if self.redis_external else f"AOF in {self.redis_dir}",
            ),
        ]

    # --- lifecycle -----------------------------------------------------------------------------

    def up(self) -> None:
        """Bring Kafka and Redis up (or check the external ones answer), then create the topics."""
        self.start_redis()
        self.start_kafka()
        self.prepare_kafka()

    def prepare_kafka(self) -> None:
        """The fleet's topics; on a secured broker also the principals' ACLs and their env files."""
        created = asyncio.run(ensure_topics(self.admin_settings))
        if created:
            self.say(f"created topics: {', '.join(created)}")
        if self.secure and not self.kafka_external:
            acls = fleet_acls(self.settings.topics)
            asyncio.run(create_acls(self.admin_settings, acls))
            files = self.security.write_env_files(port=self.settings.kafka_port)
            self.say(
                f"kafka  SASL_SSL (SCRAM-SHA-512) with {len(acls)} ACLs for {', '.join(PRINCIPALS)}; "
                f"CA {self.security.ca_path}; run a process as one with `. {files[0].parent}/<principal>.env`"
            )
            missing = self.security.missing_principals()
            if missing:
                self.say(
                    f"kafka  no user for {', '.join(missing)}: this broker was secured before they existed; "
                    f"`creditwindow dev down`, remove {self.security.directory} and the broker's data, then `dev up --secure`"
                )

    def down(self) -> None:
        self.stop_kafka()
        self.stop_redis()

    # --- Kafka ---------------------------------------------------------------------------------

    def java(self) -> str:
        candidates = []
        if os.environ.get("JAVA_HOME"):
            candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
        if shutil.which("java"):
            candidates.append(shutil.which("java") or "java")
        candidates += sorted(str(p) for p in Path("/usr/lib/jvm").glob("*/bin/java")) if Path("/usr/lib/jvm").is_dir() else []
        for java in candidates:
            major = _java_major(java)
            if major is not None and major >= 17:
                return java
        raise PlatformError(
            "Java 17 not found: Kafka 4 needs a Java 17+ runtime. Install one "
            "(Debian: `apt-get install -y openjdk-17-jre-headless`) or set JAVA_HOME, "
            "or point KAFKA_BOOTSTRAP_SERVERS at a running broker."
        )

    def kafka_libs(self) -> Path:
        libs = self.kafka_dir / "libs"
        stamp = self.kafka_dir / "libs.sha256"
        digest = hashlib.sha256(POM.read_bytes()).hexdigest()
        if libs.is_dir() and stamp.is_file() and stamp.read_text().strip() == digest:
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise PlatformError(
                "Maven not found: it resolves the Kafka jars from deploy/kafka/pom.xml. Install it "
                "(Debian: `apt-get install -y maven`) or point KAFKA_BOOTSTRAP_SERVERS at a running broker."
            )
        self.say("resolving the Apache Kafka jars with Maven (first run only) ...")
        staging = self.kafka_dir / "libs.staging"
        shutil.rmtree(staging, ignore_errors=True)
        command = [
            mvn, "-q", "-B", "-f", str(POM),
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
            f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise PlatformError(f"Maven could not resolve the Kafka jars:\n{(result.stdout + result.stderr)[-3000:]}")
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        stamp.write_text(digest)
        return libs

    def _server_properties(self) -> Path:
        s = self.settings
        data = self.kafka_dir / f"data-{s.kafka_port}"
        props = self.kafka_dir / f"server-{s.kafka_port}.properties"
        if self.secure:
            listeners = self.security.server_properties(port=s.kafka_port, controller_port=s.kafka_controller_port)
        else:
            listeners = [
                f"listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
            ]
        props.write_text(
            "\n".join(
                [
                    "# Written by creditwindow dev up: a single-node KRaft broker on 127.0.0.1.",
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers=127.0.0.1:{s.kafka_controller_port}",
                    "controller.listener.names=CONTROLLER",
                    *listeners,
                    f"log.dirs={data}",
                    f"num.partitions={s.topic_partitions}",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=12",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "num.network.threads=2",
                    "num.io.threads=4",
                    "log.segment.bytes=268435456",
                    "",
                ]
            )
        )
        props.chmod(0o600)  # a secured broker's properties hold its passwords
        return props

    def start_kafka(self) -> None:
        s = self.settings
        if self.kafka_external:
            if not self._kafka_answers(timeout=15):
                raise PlatformError(f"Kafka at KAFKA_BOOTSTRAP_SERVERS={s.kafka_servers} does not answer.")
            self.say(f"kafka  external at {s.kafka_servers}")
            return
        pid = read_pid(self._kafka_pidfile)
        if process_alive(pid) and self._kafka_answers(timeout=20):
            self.say(f"kafka  already running at {s.kafka_servers} (pid {pid})")
            return
        for port in (s.kafka_port, s.kafka_controller_port):
            if not process_alive(pid) and port_open(port):
                raise PlatformError(
                    f"port {port} on 127.0.0.1 is taken by another process. Stop it, choose other ports "
                    "(CW_KAFKA_PORT / CW_KAFKA_CONTROLLER_PORT), or use that broker with KAFKA_BOOTSTRAP_SERVERS."
                )
        java = self.java()
        libs = self.kafka_libs()
        self.kafka_dir.mkdir(parents=True, exist_ok=True)
        data = self.kafka_dir / f"data-{s.kafka_port}"
        formatted = (data / "meta.properties").is_file()
        if formatted and self.secure != self.security.exists:
            raise PlatformError(
                f"the broker in {data} was formatted {'with' if self.security.exists else 'without'} security: "
                f"stop it (`creditwindow dev down`), remove {data} to start afresh, or choose another CW_KAFKA_PORT."
            )
        if self.secure:
            self.security.create(java)
        props = self._server_properties()
        classpath = f"{libs}/*"
        if not formatted:
            users = self.security.scram_arguments() if self.secure else []
            result = subprocess.run(
                [java, "-cp", classpath, "kafka.tools.StorageTool", "format", "--standalone",
                 "-t", uuid.uuid4().hex[:22], "-c", str(props), *users],
                capture_output=True, text=True,
            )  # fmt: skip
            if result.returncode != 0:
                raise PlatformError(f"kafka storage format failed:\n{(result.stdout + result.stderr)[-2000:]}")
        log_path = self.kafka_dir / f"kafka-{s.kafka_port}.log"
        with log_path.open("ab") as log_file:
            process = subprocess.Popen(
                [
                    java, f"-Xms{s.kafka_heap}", f"-Xmx{s.kafka_heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                    "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
                    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-Dorg.slf4j.simpleLogger.showDateTime=true",
                    "-cp", classpath, KAFKA_MAIN, str(props),
                ],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self._kafka_pidfile.write_text(str(process.pid))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise PlatformError(f"the Kafka broker exited (code {process.returncode}); log {log_path}:\n{tail}")
            if self._kafka_answers(timeout=3):
                self.say(f"kafka  running at {s.kafka_servers} (pid {process.pid}, log {log_path})")
                return
            time.sleep(0.5)
        raise PlatformError(f"the Kafka broker did not answer metadata requests within 90 s; see {log_path}")

    def stop_kafka(self, *, hard: bool = False) -> None:
        if self.kafka_external:
            self.say("kafka  external: not stopped")
            return
        self._stop(self._kafka_pidfile, "kafka", hard=hard, grace_s=30)

    def _kafka_answers(self, timeout: float) -> bool:
        async def probe() -> bool:
            from aiokafka.admin import AIOKafkaAdminClient

            admin = AIOKafkaAdminClient(**aiokafka_kwargs(self.admin_settings), request_timeout_ms=int(timeout * 1000))
            try:
                await asyncio.wait_for(admin.start(), timeout)
                await asyncio.wait_for(admin.list_topics(), timeout)
                return True
            except Exception:
                return False
            finally:
                try:
                    await admin.close()
                except Exception:
                    pass

        if not self.kafka_external and not port_open(self.settings.kafka_port):
            return False
        return asyncio.run(probe())

    # --- Redis ---------------------------------------------------------------------------------

    def redis_server(self) -> str:
        found = shutil.which("redis-server")
        if found:
            return found
        apt = shutil.which("apt-get")
        if apt is None or os.geteuid() != 0:
            raise PlatformError(
                "redis-server not found: install Debian's package (`sudo apt-get install -y redis-server`) "
                "or point REDIS_URL at a running Redis."
            )
        self.say("installing Debian's redis-server (first run only) ...")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "redis-server"]):
            result = subprocess.run(command, capture_output=True, text=True, env=env)
            if result.returncode != 0:
                raise PlatformError(f"`{' '.join(command)}` failed:\n{(result.stdout + result.stderr)[-2000:]}")
        found = shutil.which("redis-server")
        if not found:
            raise PlatformError("redis-server is still missing after apt-get install redis-server")
        return found

    def start_redis(self) -> None:
        s = self.settings
        if self.redis_external:
            if not self._redis_answers():
                raise PlatformError(f"Redis at REDIS_URL={s.redis_dsn_masked} does not answer PING.")
            self.say(f"redis  external at {s.redis_dsn_masked}")
            return
        pid = read_pid(self._redis_pidfile)
        if process_alive(pid) and self._redis_answers():
            self.say(f"redis  already running at {s.redis_dsn_masked} (pid {pid})")
            return
        if not process_alive(pid) and port_open(s.redis_port):
            raise PlatformError(
                f"port {s.redis_port} on 127.0.0.1 is taken by another process. Stop it, choose another port "
                "(CW_REDIS_PORT), or use that Redis with REDIS_URL."
            )
        server = self.redis_server()
        data = self.redis_dir / f"data-{s.redis_port}"
        data.mkdir(parents=True, exist_ok=True)
        log_path = self.redis_dir / f"redis-{s.redis_port}.log"
        process = subprocess.Popen(
            [
                server, "--bind", "127.0.0.1", "--port", str(s.redis_port), "--protected-mode", "yes",
                "--dir", str(data), "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                "--logfile", str(log_path), "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self._redis_pidfile.write_text(str(process.pid))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
                raise PlatformError(f"redis-server exited (code {process.returncode}); log {log_path}:\n{tail}")
            if self._redis_answers():
                self.say(f"redis  running at {s.redis_dsn_masked} (pid {process.pid}, log {log_path})")
                return
            time.sleep(0.2)
        raise PlatformError(f"Redis did not answer PING within 30 s; see {log_path}")

    def stop_redis(self, *, hard: bool = False) -> None:
        if self.redis_external:
            self.say("redis  external: not stopped")
            return
        self._stop(self._redis_pidfile, "redis", hard=hard, grace_s=15)

    def _redis_answers(self) -> bool:
        from redis import Redis
        from redis.exceptions import RedisError

        try:
            client = Redis.from_url(self.settings.redis_dsn, socket_timeout=1, socket_connect_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (RedisError, OSError):
            return False

    # --- shared ----------------------------------------------------------------------------------

    def _stop(self, pidfile: Path, name: str, *, hard: bool, grace_s: float) -> None:
        stop_pid(pidfile, name, self.say, hard=hard, grace_s=grace_s)


def stop_pid(pidfile: Path, name: str, say: Callable[[str], None], *, hard: bool = False, grace_s: float = 15.0) -> None:
    """Stop the process of a pid file (SIGTERM, SIGKILL after `grace_s`; SIGKILL at once when `hard`)."""
    pid = read_pid(pidfile)
    if not process_alive(pid):
        say(f"{name:<6} not running")
        pidfile.unlink(missing_ok=True)
        return
    assert pid is not None
    os.kill(pid, signal.SIGKILL if hard else signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
        try:  # reap it if it is our child (tests start and stop it in-process)
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
    if process_alive(pid):
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    say(f"{name:<6} stopped (pid {pid}{', SIGKILL' if hard else ''})")
