"""The local cluster: three Kafka nodes and Redis with a replica and three Sentinels, no Docker.

`creditwindow dev up --cluster` starts, on 127.0.0.1 only and idempotently:

- three KRaft nodes, each a combined broker and controller (`kafka.Kafka` from the same Maven-resolved
  jars as the single-node platform), formatted once with a dynamic quorum (`--initial-controllers`:
  one directory id per controller), a small heap each (`CW_CLUSTER_KAFKA_HEAP`), replication factor
  3, `min.insync.replicas` 2 and unclean leader election off; failure detection in seconds;
- Redis as a master and one replica (Debian's `redis-server`, append-only file on each), and three
  Sentinels (`redis-server --sentinel`, quorum 2) that promote the replica when the master dies;
- the fleet's topics (RF 3, min.insync.replicas 2), and `<home>/cluster/cluster.env`, the variables
  that point the CLI and the services at it (`. .cache/cluster/cluster.env`).

Ports: brokers `CW_CLUSTER_KAFKA_PORT` +0..2, controllers +10..12, Redis `CW_CLUSTER_REDIS_PORT` +0..1,
Sentinels `CW_CLUSTER_SENTINEL_PORT` +0..2. The single-node platform (`dev up`) stays the default of
the demo and the tests. The fault suite (`creditwindow faults --cluster`) kills and restarts nodes
through `LocalCluster`; `active_controller` and `leadership` tell it whom to kill.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import CompactArray, CompactString, Int16, Int32, Int64, Schema, TaggedFields
from redis import Redis
from redis.exceptions import RedisError

from devtools.platform import Component, LocalPlatform, PlatformError, port_open, process_alive, read_pid
from shared.messaging import aiokafka_kwargs, check_topics, ensure_topics
from shared.settings import Settings

__all__ = ["ClusterStatus", "Layout", "LocalCluster", "active_controller", "leadership"]

NODES = 3
HOST = "127.0.0.1"


def _random_id() -> str:
    """A Kafka cluster or directory id: 16 random bytes, url-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each part of the local cluster listens."""

    kafka: tuple[int, ...]
    controllers: tuple[int, ...]
    redis: tuple[int, ...]  # the first is the master as first started, the second its replica
    sentinels: tuple[int, ...]
    master_name: str

    @classmethod
    def of(cls, settings: Settings) -> Layout:
        k, r, s = settings.cluster_kafka_port, settings.cluster_redis_port, settings.cluster_sentinel_port
        return cls(
            kafka=tuple(k + i for i in range(NODES)),
            controllers=tuple(k + 10 + i for i in range(NODES)),
            redis=(r, r + 1),
            sentinels=tuple(s + i for i in range(3)),
            master_name=settings.redis_master_name,
        )

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{HOST}:{p}" for p in self.kafka)

    @property
    def sentinel_addresses(self) -> str:
        return ",".join(f"{HOST}:{p}" for p in self.sentinels)

    def node_of(self, broker_port: int) -> int:
        return self.kafka.index(broker_port) + 1

    def env(self) -> dict[str, str]:
        """The variables that point a process at the cluster (REDIS_URL gives the database only:
        Sentinel finds the master)."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "REDIS_URL": f"redis://{HOST}:{self.redis[0]}/0",
            "CW_REDIS_SENTINELS": self.sentinel_addresses,
            "CW_REDIS_MASTER_NAME": self.master_name,
            "CW_REDIS_MIN_REPLICAS": "1",
            "CW_TOPIC_REPLICATION_FACTOR": "3",
            "CW_TOPIC_MIN_INSYNC_REPLICAS": "2",
        }

    def settings(self, base: Settings) -> Settings:
        """`base` pointed at the cluster, as a process started with `env()` reads it."""
        return base.model_copy(
            update={
                "kafka_bootstrap_servers": self.bootstrap,
                "redis_url": f"redis://{HOST}:{self.redis[0]}/0",
                "redis_sentinels": tuple(f"{HOST}:{p}" for p in self.sentinels),
                "redis_master_name": self.master_name,
                "redis_min_replicas": 1,
                "topic_replication_factor": 3,
                "topic_min_insync_replicas": 2,
            }
        )


# --- DescribeQuorum: the active controller (aiokafka has no such request) -----------------------------
# In KRaft, a Metadata response's controller id is a random live broker, not the active controller.
# A broker forwards DescribeQuorum (API key 55) to the active controller, so any bootstrap server does.

_VOTER = CompactArray(("replica_id", Int32), ("log_end_offset", Int64), ("tags", TaggedFields))


class _DescribeQuorumResponse(Response):
    API_KEY = 55
    API_VERSION = 0
    SCHEMA = Schema(
        ("error_code", Int16),
        ("topics", CompactArray(
            ("topic_name", CompactString("utf-8")),
            ("partitions", CompactArray(
                ("partition_index", Int32), ("error_code", Int16), ("leader_id", Int32), ("leader_epoch", Int32),
                ("high_watermark", Int64), ("current_voters", _VOTER), ("observers", _VOTER), ("tags", TaggedFields),
            )),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )  # fmt: skip


class _DescribeQuorumStruct(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = 55
    API_VERSION = 0
    RESPONSE_TYPE = _DescribeQuorumResponse
    SCHEMA = Schema(
        ("topics", CompactArray(
            ("topic_name", CompactString("utf-8")),
            ("partitions", CompactArray(("partition_index", Int32), ("tags", TaggedFields))),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )  # fmt: skip


class _DescribeQuorum(Request[_DescribeQuorumStruct]):
    API_KEY = 55

    def build(self, request_struct_class: type[_DescribeQuorumStruct]) -> _DescribeQuorumStruct:
        return request_struct_class([("__cluster_metadata", [(0, {})], {})], {})


@asynccontextmanager
async def _admin(settings: Settings, timeout_ms: int = 5_000) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings), request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        yield admin
    finally:
        with suppress(Exception):
            await admin.close()


async def active_controller(settings: Settings) -> int | None:
    """The node id of the active KRaft controller (None while none is elected)."""
    async with _admin(settings) as admin:
        response = await admin._send_request(_DescribeQuorum())  # noqa: SLF001 - aiokafka has no public way
    answer = response.to_object()
    partition = answer["topics"][0]["partitions"][0] if not answer["error_code"] else None
    if partition is None or partition["error_code"] or partition["leader_id"] < 0:
        return None
    return int(partition["leader_id"])


async def leadership(settings: Settings, topics: list[str]) -> dict[str, dict[int, tuple[int, list[int]]]]:
    """Per topic, per partition: (leader node id, -1 when none; the in-sync replicas)."""
    async with _admin(settings) as admin:
        described = await admin.describe_topics(topics)
    return {
        d["topic"]: {p["partition"]: (int(p["leader"]), list(p["isr"])) for p in d.get("partitions", ())}
        for d in described
        if not d.get("error_code")
    }


async def live_brokers(settings: Settings) -> set[int]:
    async with _admin(settings) as admin:
        return {int(b["node_id"]) for b in (await admin.describe_cluster())["brokers"]}


# --- status ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ClusterStatus:
    parts: list[Component] = field(default_factory=list)
    controller: int | None = None
    leaders: dict[int, int] = field(default_factory=dict)  # node -> partitions of the fleet's topics it leads
    leaderless: int = 0
    under_replicated: int = 0
    redis_master: str | None = None
    topic_differences: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(p.running for p in self.parts) and self.controller is not None and not self.leaderless


class LocalCluster:
    """Start, stop, inspect, kill and restart the nodes of the local cluster. `up` and `down` are idempotent."""

    def __init__(self, settings: Settings, say: Callable[[str], None] = print) -> None:
        self.layout = Layout.of(settings)
        self.base = settings
        self.settings = self.layout.settings(settings)
        self.say = say
        self.root = settings.home / "cluster"
        self.kafka_dir = self.root / "kafka"
        self.redis_dir = self.root / "redis"
        self._tools = LocalPlatform(settings, say=say)  # Java, the Kafka jars and redis-server, found once
        self._java: str | None = None
        # Probing a node that is down (or was just killed on purpose) is expected here: not a console warning.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    @property
    def env_file(self) -> Path:
        return self.root / "cluster.env"

    # --- lifecycle -----------------------------------------------------------------------------------

    def up(self) -> None:
        """Redis, its replica and Sentinels, then the three Kafka nodes, then the topics and the env file."""
        self.start_redis()
        self.start_kafka()
        created = asyncio.run(ensure_topics(self.settings))
        if created:
            self.say(f"created topics (replication factor 3, min.insync.replicas 2): {', '.join(created)}")
        for difference in asyncio.run(check_topics(self.settings)):
            self.say(f"topic differs: {difference}")
        self.env_file.write_text(
            "# Written by `creditwindow dev up --cluster`: `. " + str(self.env_file) + "` points the CLI and the services at it.\n"
            + "".join(f"export {k}={v}\n" for k, v in self.layout.env().items())
        )
        self.say(f"cluster up: use it with `. {self.env_file}`")

    def down(self) -> None:
        self.stop_kafka()
        self.stop_redis()

    def running(self) -> bool:
        """Whether any part of the cluster runs (from its pid files)."""
        files = [self._kafka_pidfile(n) for n in self.nodes] + [self._redis_pidfile(p) for p in (*self.layout.redis, *self.layout.sentinels)]
        return any(process_alive(read_pid(f)) for f in files)

    # --- Kafka -----------------------------------------------------------------------------------------

    @property
    def nodes(self) -> list[int]:
        return list(range(1, NODES + 1))

    def _node_dir(self, node: int) -> Path:
        return self.kafka_dir / f"node-{node}"

    def _kafka_pidfile(self, node: int) -> Path:
        return self._node_dir(node) / "kafka.pid"

    def kafka_pid(self, node: int) -> int | None:
        pid = read_pid(self._kafka_pidfile(node))
        return pid if process_alive(pid) else None

    def _properties(self, node: int) -> Path:
        layout, base = self.layout, self.base
        broker, controller = layout.kafka[node - 1], layout.controllers[node - 1]
        path = self._node_dir(node) / "server.properties"
        path.write_text(
            "\n".join(
                [
                    "# Written by creditwindow dev up --cluster: one of three combined KRaft nodes on 127.0.0.1.",
                    "process.roles=broker,controller",
                    f"node.id={node}",
                    "controller.quorum.bootstrap.servers=" + ",".join(f"{HOST}:{p}" for p in layout.controllers),
                    f"listeners=PLAINTEXT://{HOST}:{broker},CONTROLLER://{HOST}:{controller}",
                    f"advertised.listeners=PLAINTEXT://{HOST}:{broker},CONTROLLER://{HOST}:{controller}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self._node_dir(node) / 'data'}",
                    f"num.partitions={base.topic_partitions}",
                    "default.replication.factor=3",
                    "min.insync.replicas=2",
                    "unclean.leader.election.enable=false",
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=3",
                    "offsets.topic.num.partitions=12",
                    "transaction.state.log.replication.factor=3",
                    "transaction.state.log.min.isr=2",
                    "share.coordinator.state.topic.replication.factor=3",
                    "share.coordinator.state.topic.min.isr=2",
                    "group.initial.rebalance.delay.ms=0",
                    "num.network.threads=2",
                    "num.io.threads=4",
                    "log.segment.bytes=268435456",
                    # The cleaner's dedupe map is allocated on the heap at start (128 MiB by default).
                    "log.cleaner.dedupe.buffer.size=16777216",
                    # A dead node is fenced (its partitions get new leaders) in seconds, not the default ~10 s.
                    "broker.session.timeout.ms=4000",
                    "broker.heartbeat.interval.ms=500",
                    "controller.quorum.fetch.timeout.ms=1500",
                    "controller.quorum.election.timeout.ms=750",
                    # A restarted node gets its preferred leaderships back within half a minute.
                    "leader.imbalance.check.interval.seconds=30",
                    "",
                ]
            )
        )
        return path

    def _format(self, java: str, libs: Path) -> None:
        formatted = [n for n in self.nodes if (self._node_dir(n) / "data" / "meta.properties").is_file()]
        if len(formatted) == NODES:
            return
        if formatted:
            raise PlatformError(
                f"only nodes {formatted} of the cluster in {self.kafka_dir} are formatted: stop it "
                f"(`creditwindow dev down --cluster`) and remove {self.kafka_dir} to start afresh"
            )
        cluster_id = _random_id()
        voters = ",".join(f"{n}@{HOST}:{self.layout.controllers[n - 1]}:{_random_id()}" for n in self.nodes)
        self.say("formatting three KRaft nodes (a dynamic quorum of three controllers) ...")
        for node in self.nodes:
            result = subprocess.run(
                [java, "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", f"{libs}/*", "kafka.tools.StorageTool",
                 "format", "-t", cluster_id, "-c", str(self._properties(node)), "--initial-controllers", voters],
                capture_output=True, text=True,
            )  # fmt: skip
            if result.returncode != 0:
                raise PlatformError(f"formatting node {node} failed:\n{(result.stdout + result.stderr)[-2000:]}")

    def start_kafka(self, timeout_s: float = 120.0) -> None:
        """Start every node that is not running and wait until three brokers answer."""
        down = [n for n in self.nodes if self.kafka_pid(n) is None]
        if not down and self._brokers(timeout=10) == set(self.nodes):
            self.say(f"kafka  already running at {self.layout.bootstrap}")
            return
        for node in down:
            for port in (self.layout.kafka[node - 1], self.layout.controllers[node - 1]):
                if port_open(port):
                    raise PlatformError(
                        f"port {port} on 127.0.0.1 is taken by another process: stop it or choose other ports (CW_CLUSTER_KAFKA_PORT)"
                    )
        for node in self.nodes:
            self._node_dir(node).mkdir(parents=True, exist_ok=True)
        self._java = self._java or self._tools.java()
        libs = self._tools.kafka_libs()
        self._format(self._java, libs)
        for node in down:
            self.start_node(node)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for node in down:
                if self.kafka_pid(node) is None:
                    log = self._node_dir(node) / "kafka.log"
                    raise PlatformError(f"Kafka node {node} exited; log {log}:\n{log.read_text(errors='replace')[-2000:]}")
            if self._brokers(timeout=3) == set(self.nodes):
                self.say(f"kafka  three nodes running at {self.layout.bootstrap} (heap {self.base.cluster_kafka_heap} each)")
                return
            time.sleep(0.5)
        raise PlatformError(f"the three Kafka nodes did not all answer within {timeout_s:.0f} s; see {self.kafka_dir}/node-*/kafka.log")

    def start_node(self, node: int) -> int:
        """Start one Kafka node (its storage formatted already); returns its pid. Does not wait."""
        java = self._java = self._java or self._tools.java()
        libs = self._tools.kafka_libs()
        props = self._properties(node)
        heap = self.base.cluster_kafka_heap
        with (self._node_dir(node) / "kafka.log").open("ab") as log:
            process = subprocess.Popen(
                [
                    java, f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                    "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
                    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-Dorg.slf4j.simpleLogger.showDateTime=true",
                    "-cp", f"{libs}/*", "kafka.Kafka", str(props),
                ],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self._kafka_pidfile(node).write_text(str(process.pid))
        return process.pid

    def kill_node(self, node: int) -> None:
        """kill -9 one Kafka node and wait until it is gone."""
        _kill(self.kafka_pid(node), signal.SIGKILL)

    def stop_kafka(self) -> None:
        pids = {n: self.kafka_pid(n) for n in self.nodes}
        for node, pid in pids.items():
            if pid is None:
                self.say(f"kafka-{node} not running")
                self._kafka_pidfile(node).unlink(missing_ok=True)
                continue
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 40
        for node, pid in pids.items():
            if pid is None:
                continue
            while process_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            hard = process_alive(pid)
            if hard:
                _kill(pid, signal.SIGKILL)
            self._kafka_pidfile(node).unlink(missing_ok=True)
            self.say(f"kafka-{node} stopped (pid {pid}{', SIGKILL' if hard else ''})")

    def _brokers(self, timeout: float) -> set[int]:
        if not any(port_open(p) for p in self.layout.kafka):
            return set()

        async def probe() -> set[int]:
            try:
                return await asyncio.wait_for(live_brokers(self.settings), timeout)
            except Exception:
                return set()

        return asyncio.run(probe())

    # --- Redis and Sentinel ----------------------------------------------------------------------------

    def _redis_pidfile(self, port: int) -> Path:
        return self.redis_dir / f"{port}.pid"

    def redis_pid(self, port: int) -> int | None:
        pid = read_pid(self._redis_pidfile(port))
        return pid if process_alive(pid) else None

    def _write_confs(self) -> None:
        """The confs, written once: Redis and Sentinel rewrite them (who is master, the known replicas)."""
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        master = self.layout.redis[0]
        for port in self.layout.redis:
            conf = self.redis_dir / f"{port}.conf"
            if conf.exists():
                continue
            (self.redis_dir / str(port)).mkdir(exist_ok=True)
            lines = [
                f"bind {HOST}", f"port {port}", "protected-mode yes", "daemonize no",
                f"dir {self.redis_dir / str(port)}", f"logfile {self.redis_dir / f'{port}.log'}",
                "appendonly yes", "appendfsync everysec", 'save ""',
                "repl-diskless-sync yes", "repl-diskless-sync-delay 0",
            ]  # fmt: skip
            if port != master:
                lines.append(f"replicaof {HOST} {master}")
            conf.write_text("\n".join(lines) + "\n")
        for port in self.layout.sentinels:
            conf = self.redis_dir / f"sentinel-{port}.conf"
            if conf.exists():
                continue
            (self.redis_dir / f"sentinel-{port}").mkdir(exist_ok=True)
            name = self.layout.master_name
            conf.write_text(
                "\n".join(
                    [
                        f"bind {HOST}", f"port {port}", "protected-mode yes", "daemonize no",
                        f"dir {self.redis_dir / f'sentinel-{port}'}", f"logfile {self.redis_dir / f'sentinel-{port}.log'}",
                        "sentinel resolve-hostnames no",
                        f"sentinel monitor {name} {HOST} {master} 2",
                        f"sentinel down-after-milliseconds {name} 1500",
                        f"sentinel failover-timeout {name} 6000",
                        f"sentinel parallel-syncs {name} 1",
                        "",
                    ]
                )  # fmt: skip
            )

    def start_redis(self, timeout_s: float = 40.0) -> None:
        """Both Redis servers and the three Sentinels; waits until the Sentinels could fail over."""
        self._write_confs()
        for port in (*self.layout.redis, *self.layout.sentinels):
            if self.redis_pid(port) is None and port_open(port):
                raise PlatformError(
                    f"port {port} on 127.0.0.1 is taken by another process: stop it or choose other ports "
                    "(CW_CLUSTER_REDIS_PORT / CW_CLUSTER_SENTINEL_PORT)"
                )
        started = [self.start_redis_node(p) for p in self.layout.redis if self.redis_pid(p) is None]
        started += [self.start_sentinel(p) for p in self.layout.sentinels if self.redis_pid(p) is None]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            view = self.sentinel_view()
            if view and int(view.get("num-slaves", 0)) >= 1 and int(view.get("num-other-sentinels", 0)) >= 2:
                master = self.redis_master()
                self.say(
                    f"redis  master 127.0.0.1:{master}, a replica, three Sentinels at {self.layout.sentinel_addresses}"
                    + ("" if started else " (already running)")
                )
                return
            time.sleep(0.3)
        raise PlatformError(f"the Sentinels did not see a master with a replica within {timeout_s:.0f} s; see {self.redis_dir}")

    def start_redis_node(self, port: int) -> int:
        """Start one Redis server. When another one is the master now (a failover happened), it starts as
        that master's replica at once, never as a second master with stale data."""
        server = self._tools.redis_server()
        master = self.redis_master()
        extra = ["--replicaof", HOST, str(master)] if master and master != port and _redis_answers(master) else []
        process = subprocess.Popen(
            [server, str(self.redis_dir / f"{port}.conf"), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self._redis_pidfile(port).write_text(str(process.pid))
        _wait_for(lambda: _redis_answers(port), 20, f"Redis on {port} did not answer; see {self.redis_dir / f'{port}.log'}")
        return process.pid

    def start_sentinel(self, port: int) -> int:
        process = subprocess.Popen(
            [self._tools.redis_server(), str(self.redis_dir / f"sentinel-{port}.conf"), "--sentinel"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        self._redis_pidfile(port).write_text(str(process.pid))
        _wait_for(lambda: _redis_answers(port), 20, f"Sentinel on {port} did not answer; see {self.redis_dir}")
        return process.pid

    def kill_redis(self, port: int) -> None:
        _kill(self.redis_pid(port), signal.SIGKILL)

    def stop_redis(self) -> None:
        for port in (*self.layout.sentinels, *self.layout.redis):
            pid = self.redis_pid(port)
            name = f"{'sentinel' if port in self.layout.sentinels else 'redis'}-{port}"
            if pid is None:
                self.say(f"{name} not running")
            else:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 15
                while process_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if process_alive(pid):
                    _kill(pid, signal.SIGKILL)
                self.say(f"{name} stopped (pid {pid})")
            self._redis_pidfile(port).unlink(missing_ok=True)

    def redis_master(self) -> int | None:
        """The master's port, as the first Sentinel that answers says (None: no Sentinel answers)."""
        for port in self.layout.sentinels:
            try:
                with Redis(host=HOST, port=port, socket_timeout=1, socket_connect_timeout=1) as sentinel:
                    address = sentinel.sentinel_get_master_addr_by_name(self.layout.master_name)
            except (RedisError, OSError):
                continue
            if address:
                return int(address[1])
        return None

    def sentinel_view(self) -> dict[str, Any]:
        """What a Sentinel knows of the master (`SENTINEL MASTER`), empty if none answers."""
        for port in self.layout.sentinels:
            try:
                with Redis(host=HOST, port=port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True) as sentinel:
                    return dict(sentinel.sentinel_master(self.layout.master_name))
            except (RedisError, OSError):
                continue
        return {}

    def replica_in_sync(self, port: int) -> bool:
        """Whether the Redis on `port` is a replica whose link to its master is up."""
        try:
            with Redis(host=HOST, port=port, socket_timeout=1, socket_connect_timeout=1, decode_responses=True) as client:
                info = client.info("replication")
        except (RedisError, OSError):
            return False
        return info.get("role") == "slave" and info.get("master_link_status") == "up"

    # --- status ------------------------------------------------------------------------------------------

    def status(self) -> ClusterStatus:
        status = ClusterStatus()
        brokers = self._brokers(timeout=5)

        async def facts() -> tuple[int | None, dict[str, dict[int, tuple[int, list[int]]]], list[str]]:
            controller = await asyncio.wait_for(active_controller(self.settings), 10)
            leaders = await asyncio.wait_for(leadership(self.settings, self.settings.topics.all()), 10)
            differences = [str(d) for d in await asyncio.wait_for(check_topics(self.settings), 20)]
            return controller, leaders, differences

        leaders: dict[str, dict[int, tuple[int, list[int]]]] = {}
        if brokers:
            try:
                status.controller, leaders, status.topic_differences = asyncio.run(facts())
            except Exception as exc:  # noqa: BLE001 - a cluster half down still gets a status
                status.topic_differences = [f"could not describe the cluster: {exc!r}"[:300]]
        counts: Counter[int] = Counter()
        for partitions in leaders.values():
            for leader, isr in partitions.values():
                if leader < 0:
                    status.leaderless += 1
                else:
                    counts[leader] += 1
                if len(isr) < 3:
                    status.under_replicated += 1
        status.leaders = dict(sorted(counts.items()))
        for node in self.nodes:
            role = "active controller, " if status.controller == node else "controller, "
            status.parts.append(
                Component(
                    f"kafka-{node}", f"{HOST}:{self.layout.kafka[node - 1]}", node in brokers, self.kafka_pid(node), True,
                    f"broker + {role}leads {counts.get(node, 0)} of the fleet's partitions",
                )  # fmt: skip
            )
        master = self.redis_master()
        status.redis_master = f"{HOST}:{master}" if master else None
        for port in self.layout.redis:
            role = "master" if port == master else ("replica, in sync" if self.replica_in_sync(port) else "replica, not in sync")
            status.parts.append(Component(f"redis-{port}", f"{HOST}:{port}", _redis_answers(port), self.redis_pid(port), True, role))
        for port in self.layout.sentinels:
            seen = f"sees master {status.redis_master}" if status.redis_master else "no master"
            status.parts.append(Component(f"sentinel-{port}", f"{HOST}:{port}", _redis_answers(port), self.redis_pid(port), True, seen))
        return status


def _redis_answers(port: int) -> bool:
    try:
        with Redis(host=HOST, port=port, socket_timeout=1, socket_connect_timeout=1) as client:
            return bool(client.ping())
    except (RedisError, OSError):
        return False


def _kill(pid: int | None, sig: int) -> None:
    if pid is None:
        return
    with suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + 15
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
        with suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def _wait_for(condition: Callable[[], bool], timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise PlatformError(message)
