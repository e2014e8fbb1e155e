"""A broker that asks who is calling: SASL_SSL (SCRAM-SHA-512 over TLS), KRaft's StandardAuthorizer
and the fleet's ACLs, on a broker of the test's own (ports 29100-29198, never the shared one).

The three services run as separate processes, each as its own principal; an upstream app's
principal sends applications, and decisions and notifications come out; a service's principal
cannot write `credit.policy` nor read `credit.deadletter`, while the operator can do both; the
upstream principal writes requests only and reads nothing. The ACLs are the table's
(shared/contracts/principals.py), the same as the Strimzi users of deploy/k8s.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import TopicAuthorizationFailedError

from creditwindow.policy_ops import publish_update, signed_update
from devtools.fleet import SERVICES, Fleet
from devtools.germancredit import applications
from devtools.platform import LocalPlatform
from services.policy.control.document import load_policy
from shared.contracts import NotificationSent, WindowClosed, WindowOpened
from shared.messaging import aiokafka_kwargs
from shared.messaging.topic_io import Publisher, TopicReader
from shared.settings import Settings

APPLICATIONS = 12


def _free_pair() -> int:
    for port in range(29100, 29198, 2):
        taken = False
        for candidate in (port, port + 1):
            with socket.socket() as sock:
                taken = taken or sock.connect_ex(("127.0.0.1", candidate)) == 0
        if not taken:
            return port
    raise RuntimeError("no free pair of ports in 29100-29199")


@pytest.fixture
def secured(endpoints: dict[str, str], namespace: str) -> Iterator[LocalPlatform]:
    """A secured single-node broker of this test's own, stopped and deleted whatever happens."""
    port = _free_pair()
    settings = Settings(
        kafka_bootstrap_servers=None,
        redis_url=endpoints["REDIS_URL"],
        kafka_port=port,
        kafka_controller_port=port + 1,
        kafka_heap="512m",
        topic_namespace=namespace,
    )
    platform = LocalPlatform(settings, say=lambda line: print(f"[secure platform] {line}"), secure=True)
    try:
        platform.start_kafka()
        platform.prepare_kafka()
        yield platform
    finally:
        platform.stop_kafka()
        shutil.rmtree(platform.kafka_dir / f"data-{port}", ignore_errors=True)
        shutil.rmtree(platform.security.directory, ignore_errors=True)
        (platform.kafka_dir / f"server-{port}.properties").unlink(missing_ok=True)


def _as(platform: LocalPlatform, principal: str) -> Settings:
    return platform.security.client_settings(platform.settings, principal, port=platform.settings.kafka_port)


async def _write(settings: Settings, topic: str) -> None:
    producer = AIOKafkaProducer(**aiokafka_kwargs(settings), request_timeout_ms=10_000)
    await producer.start()
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, b"{}", key=b"forged"), 20)
    finally:
        await producer.stop()


async def _read(settings: Settings, topic: str) -> int:
    """How many records of the topic this principal gets (an authorised topic's fetch
    that is refused raises TopicAuthorizationFailedError; a topic it may not even describe yields none)."""
    consumer = AIOKafkaConsumer(**aiokafka_kwargs(settings), group_id=None, request_timeout_ms=10_000)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(settings.topic_partitions)])
        await consumer.seek_to_beginning()
        batches = await asyncio.wait_for(consumer.getmany(timeout_ms=3000), 20)
        return sum(len(records) for records in batches.values())
    finally:
        await consumer.stop()


async def test_the_fleet_decides_through_a_secured_broker_where_each_principal_does_only_its_part(
    secured: LocalPlatform, endpoints: dict[str, str], namespace: str, log_root: Path
) -> None:
    security, port, topics = secured.security, secured.settings.kafka_port, secured.settings.topics
    operator, upstream = _as(secured, "operator"), _as(secured, "upstream")
    fleet = Fleet(
        env={"REDIS_URL": endpoints["REDIS_URL"], "CW_TOPIC_NAMESPACE": namespace},
        log_dir=log_root / namespace,
        extra_env={service: security.client_env(service, port=port) for service in SERVICES},
    )
    fleet.start()
    try:
        await asyncio.to_thread(fleet.wait_ready, 90)
        batch = list(applications(f"sec{time.time_ns() % 10**8}", count=APPLICATIONS))
        async with Publisher(upstream) as publisher:
            await asyncio.gather(*[await publisher.send(topics.applications, a) for a in batch])
        async with TopicReader(operator, [topics.windows, topics.notifications]) as reader:
            seen = await reader.until(
                lambda s: len({r.event.application_id for r in s if isinstance(r.event, NotificationSent)}) >= APPLICATIONS,
                timeout_s=60,
            )
        decided = {r.event.application_id for r in seen if isinstance(r.event, (WindowOpened, WindowClosed))}
        assert decided == {a.application_id for a in batch}

        # Only the operator steers the fleet: its signed update is applied by the policy service.
        data = load_policy(operator.policy_path).model_dump(mode="json")
        data["version"] += 1
        await publish_update(signed_update(yaml.safe_dump(data), operator, issued_by="op_secure"), operator)
        deadline = time.monotonic() + 30
        while not fleet.logged("policy-0", "policy_applied", f"default@{data['version']}"):
            assert time.monotonic() < deadline, fleet.tail("policy-0")
            await asyncio.sleep(0.2)

        # The services' principals cannot write the control topic nor read the dead letters.
        for service in SERVICES:
            with pytest.raises(TopicAuthorizationFailedError):
                await _write(_as(secured, service), topics.policy)
            with pytest.raises(TopicAuthorizationFailedError):
                await _read(_as(secured, service), topics.deadletter)
        with pytest.raises(TopicAuthorizationFailedError):
            await _write(_as(secured, "scoring"), topics.windows)  # nor another service's output
        await _read(operator, topics.deadletter)  # the operator may
        # Upstream apps write requests, never the fleet's results nor its controls, and read nothing.
        for topic in (topics.windows, topics.scores, topics.notifications, topics.policy, topics.deadletter):
            with pytest.raises(TopicAuthorizationFailedError):
                await _write(upstream, topic)
        assert await _read(operator, topics.windows) > 0
        assert await _read(upstream, topics.windows) == 0  # not even told the topic exists
        assert not fleet.exited(), [p.name for p in fleet.exited()]
    finally:
        fleet.stop()

    passwords = security.credentials()
    for service in SERVICES:
        text = fleet.processes[f"{service}-0"].log_path.read_text()
        assert not any(password in text for password in passwords.values()), f"a password in {service}'s log"
