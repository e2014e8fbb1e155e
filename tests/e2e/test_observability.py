"""/health and /metrics of every service after real traffic: FastStream's Kafka metrics and the business ones."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from devtools.germancredit import applications
from shared.contracts import NotificationSent
from tests.e2e.conftest import RunningFleet

APPLICATIONS = 250  # past the 200 scores the PSI gauge waits for


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def _total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(value for found, value in samples.get(name, []) if all(found.get(k) == v for k, v in labels.items()))


async def test_every_service_is_healthy_and_exports_its_metrics_after_traffic(fleet: RunningFleet) -> None:
    topics = fleet.settings.topics
    batch = list(applications(f"obs{time.time_ns() % 10**9}", count=APPLICATIONS))
    await fleet.publish(topics.applications, batch)
    await fleet.publish_raw(topics.applications, b"\x00not json", key=b"cus_obs_garbage1")
    await fleet.publish_raw(topics.windows, b'{"event_type": "WindowOpened"}', key=b"cus_obs_garbage2", headers=[("event_type", b"WindowOpened")])
    await fleet.read(
        [topics.notifications], lambda seen: len({r.event.application_id for r in seen if isinstance(r.event, NotificationSent)}) >= APPLICATIONS
    )
    # The policy's sweeper refreshes the budget gauges every second: wait until it has.
    policy_metrics = f"{fleet.fleet.http_address('policy-0')}/metrics"
    deadline = time.monotonic() + 30
    while _total(_samples(httpx.get(policy_metrics, timeout=5).text), "creditwindow_budget_reserved_cny", segment="individual") <= 0:
        assert time.monotonic() < deadline, "the budget gauges were never refreshed"
        await asyncio.sleep(0.1)

    scraped = {}
    for name in ("scoring-0", "policy-0", "notification-0"):
        address = fleet.fleet.http_address(name)
        health = httpx.get(f"{address}/health", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ready" and health.json()["kafka"] is True
        scraped[name.split("-")[0]] = _samples(httpx.get(f"{address}/metrics", timeout=5).text)
    assert httpx.get(f"{fleet.fleet.http_address('policy-0')}/health", timeout=5).json()["redis"] is True
    assert httpx.get(f"{fleet.fleet.http_address('notification-0')}/health", timeout=5).json()["redis"] is True
    assert httpx.get(f"{fleet.fleet.http_address('scoring-0')}/health", timeout=5).json()["redis"] is True

    for service, samples in scraped.items():  # FastStream's Kafka middleware, per service
        assert _total(samples, "faststream_received_messages_total", app_name=service) > 0, service
        assert _total(samples, "creditwindow_published_records_total") > 0, service  # the outbox publishes past FastStream

    scoring, policy, notification = scraped["scoring"], scraped["policy"], scraped["notification"]
    assert _total(scoring, "creditwindow_scores_total", outcome="scored") >= APPLICATIONS
    assert 0 <= _total(scoring, "creditwindow_score_psi") < 1 and scoring.get("creditwindow_score_psi")
    assert _total(scoring, "creditwindow_dead_letters_total", source=topics.applications, error_type="undecodable") == 1

    decisions = policy["creditwindow_decisions_total"]
    assert sum(v for _, v in decisions) >= APPLICATIONS
    assert any(labels["outcome"] == "closed" and labels["category"] == "credit" and labels["reason"] for labels, v in decisions if v > 0)
    assert _total(policy, "creditwindow_limit_granted_cny_count") == _total(policy, "creditwindow_decisions_total", outcome="opened") > 0
    assert _total(policy, "creditwindow_budget_utilisation", segment="individual") > 0
    assert _total(policy, "creditwindow_budget_reserved_cny", segment="individual") > 0

    assert _total(notification, "creditwindow_notifications_total", channel="inbox", result="sent") >= APPLICATIONS
    assert _total(notification, "creditwindow_notifications_total", outcome="opened") > 0
    assert _total(notification, "creditwindow_notifications_total", outcome="closed") > 0
    assert _total(notification, "creditwindow_dead_letters_total", source=topics.windows, error_type="invalid") == 1


async def test_health_is_not_ready_while_redis_does_not_answer(endpoints: dict[str, str], namespace: str, log_root: Path) -> None:
    from devtools.fleet import Fleet

    fleet = Fleet(
        env={"KAFKA_BOOTSTRAP_SERVERS": endpoints["KAFKA_BOOTSTRAP_SERVERS"], "REDIS_URL": "redis://127.0.0.1:1/0", "CW_TOPIC_NAMESPACE": namespace},
        log_dir=log_root / namespace / "no-redis",
        services=("scoring",),
    )
    fleet.start()
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline:
            address = fleet.http_address("scoring-0")
            if address:
                response = httpx.get(f"{address}/health", timeout=5)
                body = (response.status_code, response.json())
                if body[1].get("kafka"):
                    break
            await asyncio.sleep(0.3)
        assert body is not None and body[0] == 503
        assert body[1]["kafka"] is True and body[1]["redis"] is False and body[1]["status"] == "unavailable"
    finally:
        fleet.stop()
