"""Kafka (KRaft, single node) and Redis in containers for the end-to-end tests, with testcontainers.

The images: the ones `make images` recorded in .cache/images.env (built here from Debian's
packages and Maven when no registry answers), else the official apache/kafka and redis images
where present or pullable. Both Kafka images take the same configuration (KAFKA_* variables and
CLUSTER_ID, see deploy/kafka/entrypoint.sh), so the code below does not care which one it runs.

Ports are published on 127.0.0.1 only, and containers (with their anonymous volumes) are removed
when the session ends. Ryuk, testcontainers' reaper, is off: its image comes from a registry.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # read when testcontainers is imported

import docker
import redis
from aiokafka.admin import AIOKafkaAdminClient
from docker.errors import APIError, DockerException, ImageNotFound
from testcontainers.core.container import DockerContainer

from shared.settings import REPO_ROOT

__all__ = ["ContainersUnavailable", "choose_images", "docker_answers", "kafka_and_redis"]

LOOPBACK = "127.0.0.1"
KAFKA_VERSION = "4.1.1"
OFFICIAL = {"kafka": f"apache/kafka:{KAFKA_VERSION}", "redis": "redis:7"}
LOCAL = {"kafka": f"local/kafka:{KAFKA_VERSION}", "redis": "local/redis:7"}
IMAGES_ENV = REPO_ROOT / ".cache" / "images.env"
HOW_TO_BUILD = "build them with `make images` (as root, with the Docker engine running)"


class ContainersUnavailable(RuntimeError):
    """No Docker engine answers, or no Kafka/Redis image is here or can be pulled."""


def docker_answers() -> bool:
    try:
        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - no engine, whatever the reason
        return False


def _recorded(path: Path = IMAGES_ENV) -> dict[str, str]:
    """What `make images` built or chose, from .cache/images.env."""
    if not path.is_file():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def choose_images() -> dict[str, str]:
    """The Kafka and Redis images to run: named (CW_KAFKA_IMAGE / CW_REDIS_IMAGE), recorded by
    `make images`, the local builds, or the official images; the first one present wins, then the
    first one that can be pulled."""
    recorded = _recorded()
    client = docker.from_env(timeout=10)
    chosen: dict[str, str] = {}
    try:
        for kind in ("kafka", "redis"):
            named = os.environ.get(f"CW_{kind.upper()}_IMAGE") or recorded.get(f"CW_{kind.upper()}_IMAGE")
            candidates = list(dict.fromkeys(c for c in (named, LOCAL[kind], OFFICIAL[kind]) if c))
            for image in candidates:
                try:
                    client.images.get(image)
                    chosen[kind] = image
                    break
                except ImageNotFound:
                    continue
            else:
                for image in candidates:
                    if image.startswith("local/"):
                        continue  # built here, never pulled
                    try:
                        client.images.pull(image)
                        chosen[kind] = image
                        break
                    except DockerException:
                        continue
            if kind not in chosen:
                raise ContainersUnavailable(
                    f"no {kind} image: none of {', '.join(candidates)} is here and none could be pulled; {HOW_TO_BUILD}"
                )
    finally:
        client.close()
    return chosen


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _kafka_answers(bootstrap: str) -> bool:
    quiet = logging.getLogger("aiokafka")  # "Unable connect" until the broker is up is expected here
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        return asyncio.run(_kafka_probe(bootstrap))
    finally:
        quiet.setLevel(level)


async def _kafka_probe(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await asyncio.wait_for(admin.start(), 5)
        await asyncio.wait_for(admin.list_topics(), 5)
        return True
    except Exception:  # noqa: BLE001 - not up yet
        return False
    finally:
        await admin.close()


def _redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - not up yet
        return False
    finally:
        client.close()


def _wait(container: DockerContainer, check: Callable[[], bool], what: str, timeout_s: float) -> None:
    """Until `check` passes; a container that stops, or never answers, fails with its last log lines."""
    deadline = time.monotonic() + timeout_s
    while not check():
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        if wrapped.status != "running":
            logs = wrapped.logs(tail=40).decode(errors="replace")
            raise ContainersUnavailable(f"the {what} container stopped ({wrapped.status}):\n{logs}")
        if time.monotonic() > deadline:
            logs = wrapped.logs(tail=40).decode(errors="replace")
            raise ContainersUnavailable(f"the {what} container did not answer within {timeout_s:.0f} s:\n{logs}")
        time.sleep(0.5)


def kafka_container(image: str, port: int) -> DockerContainer:
    """A single-node KRaft broker listening and advertised on 127.0.0.1:`port`, inside and out.

    The listener's port is the published port: the advertised address is then right for clients
    on this machine and for the broker itself, with no file to write after the container starts.
    """
    container = DockerContainer(image).with_envs(
        CLUSTER_ID="cwtestcontainers00000A",
        KAFKA_NODE_ID="1",
        KAFKA_PROCESS_ROLES="broker,controller",
        KAFKA_LISTENERS=f"PLAINTEXT://:{port},CONTROLLER://:9093",
        KAFKA_ADVERTISED_LISTENERS=f"PLAINTEXT://{LOOPBACK}:{port}",
        KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        KAFKA_INTER_BROKER_LISTENER_NAME="PLAINTEXT",
        KAFKA_CONTROLLER_LISTENER_NAMES="CONTROLLER",
        KAFKA_CONTROLLER_QUORUM_VOTERS="1@localhost:9093",
        KAFKA_AUTO_CREATE_TOPICS_ENABLE="false",  # topics come from the project, as on the local platform
        KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR="1",
        KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS="12",
        KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR="1",
        KAFKA_TRANSACTION_STATE_LOG_MIN_ISR="1",
        KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR="1",
        KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR="1",
        KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS="0",
        KAFKA_LOG_DIRS="/var/lib/kafka/data",
        KAFKA_HEAP_OPTS="-Xms256m -Xmx768m",
        KAFKA_LOG4J_ROOT_LOGLEVEL="WARN",
    )
    container.ports[f"{port}/tcp"] = (LOOPBACK, port)  # type: ignore[assignment]  # docker-py: (host ip, host port)
    return container


def redis_container(image: str) -> DockerContainer:
    container = DockerContainer(
        image, command=["redis-server", "--save", "", "--appendonly", "no", "--protected-mode", "no"]
    )
    container.ports["6379/tcp"] = (LOOPBACK, None)  # type: ignore[assignment]  # a free port, on loopback only
    return container


def _start_kafka(image: str, stack: ExitStack, attempts: int = 3) -> str:
    for attempt in range(attempts):
        port = _free_port()
        container = kafka_container(image, port)
        try:
            stack.enter_context(container)
        except APIError as exc:  # the port was taken between the probe and the bind: take another
            if attempt + 1 == attempts or "already" not in str(exc) and "in use" not in str(exc):
                raise
            continue
        bootstrap = f"{LOOPBACK}:{port}"
        _wait(container, lambda address=bootstrap: _kafka_answers(address), f"Kafka ({image})", timeout_s=120)
        return bootstrap
    raise AssertionError("unreachable")


@contextmanager
def kafka_and_redis(say: Callable[[str], None] = print) -> Iterator[dict[str, str]]:
    """Start Kafka and Redis containers; yield their endpoints; remove both (and their volumes)."""
    if not docker_answers():
        raise ContainersUnavailable("no Docker engine answers (start one: bash deploy/images/engine.sh start)")
    images = choose_images()
    began = time.monotonic()
    with ExitStack() as stack:
        redis_box = redis_container(images["redis"])
        stack.enter_context(redis_box)
        url = f"redis://{LOOPBACK}:{redis_box.get_exposed_port(6379)}/0"
        bootstrap = _start_kafka(images["kafka"], stack)
        _wait(redis_box, lambda: _redis_answers(url), f"Redis ({images['redis']})", timeout_s=30)
        say(
            f"[containers] {images['kafka']} at {bootstrap}, {images['redis']} at {url} ({time.monotonic() - began:.1f} s)"
        )
        yield {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "REDIS_URL": url}
