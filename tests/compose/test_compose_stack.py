"""docker-compose.yml end to end (`make compose-check`): a fresh stack comes up, every health check
passes, 1,000 German Credit applications go in from this machine, 1,000 decisions and 1,000
notifications come out, and the stack goes down with its network and volumes.

Needs a Docker engine with compose v2 and the images (`make images`); skipped unless
CW_COMPOSE_CHECK=1, which `make compose-check` sets.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from devtools.germancredit import applications
from shared.contracts import NotificationSent, WindowClosed, WindowOpened
from shared.messaging.topic_io import Publisher, TopicReader
from shared.settings import REPO_ROOT, Settings
from tests.containers import IMAGES_ENV

pytestmark = pytest.mark.skipif(
    os.environ.get("CW_COMPOSE_CHECK") != "1",
    reason="needs Docker, compose v2 and `make images`: run `make compose-check`",
)

APPLICATIONS = 1_000
SERVICES = {
    "scoring": "CW_COMPOSE_SCORING_PORT",
    "policy": "CW_COMPOSE_POLICY_PORT",
    "notification": "CW_COMPOSE_NOTIFICATION_PORT",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Stack:
    """One compose project of docker-compose.yml, on ports of its own."""

    def __init__(self) -> None:
        self.project = f"cwcheck{uuid.uuid4().hex[:6]}"
        self.ports = {
            name: _free_port() for name in ("CW_COMPOSE_KAFKA_PORT", "CW_COMPOSE_REDIS_PORT", *SERVICES.values())
        }
        self.env = {**os.environ, **{k: str(v) for k, v in self.ports.items()}}

    def compose(self, *args: str, timeout: float = 600) -> str:
        command = ["docker", "compose", "-p", self.project, "-f", str(REPO_ROOT / "docker-compose.yml")]
        if IMAGES_ENV.is_file():
            command += ["--env-file", str(IMAGES_ENV)]
        done = subprocess.run(
            [*command, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        assert done.returncode == 0, (
            f"docker compose {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        return done.stdout

    def docker(self, *args: str) -> str:
        return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout

    def left_behind(self) -> list[str]:
        label = f"label=com.docker.compose.project={self.project}"
        return [
            *self.docker("ps", "-aq", "--filter", label).split(),
            *self.docker("volume", "ls", "-q", "--filter", label).split(),
            *self.docker("network", "ls", "-q", "--filter", label).split(),
        ]


@pytest.fixture
def stack() -> Iterator[Stack]:
    stack = Stack()
    try:
        yield stack
    finally:
        began = time.monotonic()
        stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "20")
        print(f"[compose] down with volumes in {time.monotonic() - began:.1f} s")
        assert not stack.left_behind(), f"left behind: {stack.left_behind()}"


async def _decide(settings: Settings, run_id: str) -> tuple[int, int]:
    topics = settings.topics
    async with Publisher(settings) as publisher:
        futures = [await publisher.send(topics.applications, a) for a in applications(run_id, count=APPLICATIONS)]
        await asyncio.gather(*futures)
    prefix = f"app_{run_id}_"
    decided: set[str] = set()
    notified: set[str] = set()

    def on_batch(records: list) -> None:  # type: ignore[type-arg]
        for record in records:
            event = record.event
            if isinstance(event, (WindowOpened, WindowClosed)) and event.application_id.startswith(prefix):
                decided.add(event.application_id)
            elif isinstance(event, NotificationSent) and event.application_id.startswith(prefix):
                notified.add(event.application_id)

    def done(_: list) -> bool:  # type: ignore[type-arg]
        return len(decided) >= APPLICATIONS and len(notified) >= APPLICATIONS

    async with TopicReader(settings, [topics.windows, topics.notifications]) as reader:
        await reader.until(done, timeout_s=300, on_batch=on_batch)
    return len(decided), len(notified)


def test_the_stack_comes_up_healthy_decides_and_notifies_1000_applications_and_goes_down(stack: Stack) -> None:
    began = time.monotonic()
    stack.compose("up", "--detach", "--wait", "--wait-timeout", "300")
    up_s = time.monotonic() - began

    states = [
        json.loads(line) for line in stack.compose("ps", "--all", "--format", "json").splitlines() if line.strip()
    ]
    by_service = {state["Service"]: state for state in states}
    for name in ("kafka", "redis", *SERVICES):
        assert by_service[name]["State"] == "running" and by_service[name]["Health"] == "healthy", by_service[name]
    assert by_service["topics"]["State"] == "exited" and by_service["topics"]["ExitCode"] == 0
    for name, port_var in SERVICES.items():
        health = httpx.get(f"http://127.0.0.1:{stack.ports[port_var]}/health", timeout=5).json()
        assert health == {"service": name, "status": "ready", "kafka": True, "redis": True}

    # Every container that runs the fleet's image says it is local (development keys allowed there only).
    for name in ("topics", *SERVICES):
        env = json.loads(stack.docker("inspect", "--format", "{{json .Config.Env}}", by_service[name]["ID"]))
        assert "CW_ENVIRONMENT=local" in env, name
    # Kafka and Redis keep their data on the project's named volumes.
    volumes = set(
        stack.docker("volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={stack.project}").split()
    )
    assert volumes == {f"{stack.project}_kafka-data", f"{stack.project}_redis-data"}

    settings = Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{stack.ports['CW_COMPOSE_KAFKA_PORT']}",
        redis_url=f"redis://127.0.0.1:{stack.ports['CW_COMPOSE_REDIS_PORT']}/0",
    )
    sent = time.monotonic()
    decided, notified = asyncio.run(_decide(settings, f"compose{time.strftime('%H%M%S')}"))
    flow_s = time.monotonic() - sent
    print(
        f"[compose] up and healthy in {up_s:.1f} s; {APPLICATIONS} applications -> {decided} decisions, {notified} notifications in {flow_s:.1f} s"
    )
    assert (decided, notified) == (APPLICATIONS, APPLICATIONS)
