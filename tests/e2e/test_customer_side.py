"""The customer's side on the real broker and Redis, the services as separate processes (issue 15):
an explanation on request (HTTP and CLI) verified, a review by a person overturning a decision, a
suspension that survives a restart, and an outage of Redis told once and decided once."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from creditwindow.operator_ops import signed_action
from services.policy.care.reviewing import review_id_for
from shared.contracts import (
    DeadLetter,
    DecisionDelayed,
    NotificationSent,
    ReviewConcluded,
    ReviewDecided,
    ReviewOpened,
    ReviewRequested,
    WindowClosed,
    WindowOpened,
)
from shared.messaging.topic_io import ReadRecord
from shared.references import reference_of
from tests.clocks import WALL
from tests.e2e.conftest import RunningFleet, start_fleet
from tests.unit.policy.factories import default_policy, score

SERVICES = ("policy", "notification")


def _events(seen: list[ReadRecord], kind: type) -> list:  # type: ignore[type-arg]
    return [r.event for r in seen if isinstance(r.event, kind)]


async def _cli_text(env: dict[str, str], *args: str) -> str:
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "creditwindow", *args], env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


async def _cli(env: dict[str, str], *args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(await _cli_text(env, *args))  # type: ignore[no-any-return]


def _env(running: RunningFleet, endpoints: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **endpoints, "CW_TOPIC_NAMESPACE": running.settings.topic_namespace, "COLUMNS": "200", "CW_LOG_FORMAT": "json"}


def _unique(prefix: str) -> tuple[str, str]:
    tag = f"{time.time_ns() % 10**9:09d}"
    return f"app_{prefix}_{tag}", f"cus_{prefix}_{tag}"


async def test_a_decision_is_explained_on_request_and_overturned_on_review_by_a_person(endpoints: dict[str, str], namespace: str, log_root: Path) -> None:
    token = secrets.token_urlsafe(32)
    running = await start_fleet(endpoints, namespace, log_root, services=SERVICES, env={"CW_API_TOKENS": json.dumps({"app-e2e": token})})
    topics = running.settings.topics
    env = _env(running, endpoints)
    try:
        application, customer = _unique("rev")
        closed_score = score(at=WALL.now(), points=480.0, application_id=application, customer_id=customer, income=90_000)
        await running.publish(topics.scores, [closed_score])
        seen = await running.read([topics.windows, topics.notifications], lambda s: len(_events(s, NotificationSent)) >= 1)
        (closed,) = _events(seen, WindowClosed)
        (told,) = _events(seen, NotificationSent)
        reference = reference_of(closed.decision_id)

        # explanation on request: the customer-data API (for upstream apps) and the CLI (for operators)
        api = running.fleet.api_address("policy-0")
        assert api
        async with httpx.AsyncClient(base_url=api, timeout=30) as client:
            refused = await client.get(f"/explanations/{reference}")
            answer = await client.get(f"/explanations/{reference.lower()}", headers={"Authorization": f"Bearer {token}"})
            unknown = await client.get("/explanations/CW-0000-0000-0000", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401 and unknown.status_code == 404
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["reference"], body["category"], body["reason"], body["policy_version"]) == (reference, "credit", "score_below_cutoff", "default@1")
        assert body["threshold"]["threshold"] == 518 and body["rules"][-1] == {"rule": "score_below_cutoff", "threshold": 518, "value": 480.0, "passed": False}
        assert {b["bound"] for b in body["bounds"]} >= {"risk_grade", "income_cap", "absolute_cap"}
        assert body["messages"][0]["body"] == told.body and body["score"]["points"] == 480.0
        explained = await _cli(env, "explain", reference, "--verify", "--json")
        assert explained["verification"]["verdict"] == "reproduced", explained["verification"]

        # review by a person: two requests make one review, acknowledged and told once
        for _ in range(2):
            await running.publish(topics.reviews, [ReviewRequested(correlation_id=application, customer_id=customer, reference=reference, statement="My savings are higher now.")])
        seen = await running.read([topics.reviews, topics.notifications], lambda s: any(isinstance(e, NotificationSent) and e.about == "review" for e in _events(s, NotificationSent)))
        assert len({o.event_id for o in _events(seen, ReviewOpened)}) == 1
        listed = await _cli(env, "review", "list", "--json")
        assert [(r["reference"], r["status"], r["requests"], r["overdue"]) for r in listed["reviews"]] == [(reference, "open", 2, False)]
        shown = await _cli_text(env, "review", "show", reference)
        for part in ("My savings are higher now.", "limit basis", "rules, in order", "score_below_cutoff", "as sent", "verification: reproduced"):
            assert part in shown, part

        # a forged decision is refused; the operator's signed one overturns the decision
        settings = running.settings
        forged = signed_action(
            ReviewDecided, settings, issued_by="mallory", review_id=review_id_for(reference), reference=reference,
            decision_id=closed.decision_id, customer_id=customer, outcome="overturned", limit=3000, note="",
        ).model_copy(update={"limit": 200_000})  # fmt: skip
        await running.publish(topics.reviews, [forged])
        decided = await _cli(env, "review", "decide", reference, "--open", "--limit", "3000", "--note", "Savings confirmed.", "--issued-by", "ops_lin", "--yes", "--json")
        assert decided["outcome"] == "overturned"

        def done(s: list[ReadRecord]) -> bool:
            opened = _events(s, WindowOpened)
            return bool(opened) and any(n.decision_id == opened[0].decision_id for n in _events(s, NotificationSent)) and bool(_events(s, ReviewConcluded))

        seen = await running.read([topics.windows, topics.reviews, topics.notifications, topics.deadletter], done, settle_s=2)
        (opened,) = _events(seen, WindowOpened)
        assert (opened.trigger, opened.limit, opened.reviewed_decision_id, opened.review_note) == ("review", 3000, closed.decision_id, "Savings confirmed.")
        assert [(c.outcome, c.new_decision_id, c.decided_by) for c in _events(seen, ReviewConcluded)][:1] == [("overturned", opened.decision_id, "ops_lin")]
        assert [d.error_type for d in _events(seen, DeadLetter)] == ["operator_forged"]
        message = next(n for n in _events(seen, NotificationSent) if n.decision_id == opened.decision_id)
        assert message.title == "经人工复核,您的借款额度已开通" and reference in message.body and "Savings confirmed." in message.body
        limits = await _cli(env, "limits", "get", customer, "--json")
        assert (limits["status"], limits["limit"], limits["decision_id"]) == ("open", 3000, str(opened.decision_id))
        again = await _cli(env, "explain", reference_of(opened.decision_id), "--verify", "--json")
        assert again["verification"]["verdict"] == "reproduced" and again["review"]["reviewed_reference"] == reference
    finally:
        running.fleet.stop()


async def test_a_suspended_customer_stays_closed_across_a_restart_until_lifted(endpoints: dict[str, str], namespace: str, log_root: Path) -> None:
    running = await start_fleet(endpoints, namespace, log_root, services=SERVICES)
    topics = running.settings.topics
    env = _env(running, endpoints)
    try:
        application, customer = _unique("sus")
        await running.publish(topics.scores, [score(at=WALL.now(), application_id=application, customer_id=customer)])
        seen = await running.read([topics.windows], lambda s: bool(_events(s, WindowOpened)))
        (first,) = _events(seen, WindowOpened)
        await _cli(env, "customer", "suspend", customer, "--reason", "identity_check", "--until", "2099-01-01", "--yes", "--json")
        seen = await running.read([topics.windows], lambda s: any(c.trigger == "suspension" for c in _events(s, WindowClosed)))
        (closure,) = [c for c in _events(seen, WindowClosed) if c.trigger == "suspension"]
        assert (closure.reason, closure.closes_decision_id) == ("customer_suspended", first.decision_id)
        assert [s["customer_id"] for s in (await _cli(env, "customer", "suspensions", "--json"))["suspended"]] == [customer]

        running.fleet.kill("policy-0")  # the suspension is restored from credit.reviews at start
        running.fleet.restart("policy-0")
        await asyncio.to_thread(running.fleet.wait_ready)
        await running.publish(topics.scores, [score(at=WALL.now(), application_id=f"{application}_2", customer_id=customer)])
        seen = await running.read([topics.windows, topics.notifications], lambda s: any(c.application_id == f"{application}_2" for c in _events(s, WindowClosed)))
        applied = next(c for c in _events(seen, WindowClosed) if c.application_id == f"{application}_2")
        assert (applied.category, applied.reason) == ("strategy", "customer_suspended")

        await _cli(env, "customer", "lift", customer, "--yes", "--json")
        await running.until_logged("policy-0", "suspension_lifted", customer)
        await running.publish(topics.scores, [score(at=WALL.now(), application_id=f"{application}_3", customer_id=customer)])
        seen = await running.read([topics.windows, topics.notifications], lambda s: any(o.application_id == f"{application}_3" for o in _events(s, WindowOpened)))
        neutral = [n for n in _events(seen, NotificationSent) if n.decision_id == applied.decision_id]
        assert neutral and "信用" in neutral[0].body and "identity" not in neutral[0].body  # the reason is never told
    finally:
        running.fleet.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnRedis:
    """A redis-server of this test's own (never the shared one): stopped and started at will, its data kept."""

    def __init__(self, directory: Path) -> None:
        server = shutil.which("redis-server")
        assert server, "the local platform installs redis-server"
        self.command = [server, "--bind", "127.0.0.1", "--port", str(_free_port()), "--dir", str(directory), "--appendonly", "yes", "--save", ""]
        self.port = int(self.command[4])
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: it writes its append-only file and exits
            self.process.wait(timeout=30)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    redis = OwnRedis(tmp_path)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


async def test_an_outage_of_redis_mid_stream_is_told_once_and_the_application_decided_once(
    endpoints: dict[str, str], namespace: str, log_root: Path, own_redis: OwnRedis, tmp_path: Path
) -> None:
    policy_file = tmp_path / "policy.yaml"
    document = default_policy().model_dump(mode="json")
    document["customer_care"]["delay_notice_after"] = "PT3S"
    policy_file.write_text(yaml.safe_dump(document))
    ours = {**endpoints, "REDIS_URL": own_redis.url}
    running = await start_fleet(ours, namespace, log_root, services=SERVICES, env={"CW_POLICY_PATH": str(policy_file)})
    topics = running.settings.topics
    try:
        before, customer = _unique("out")
        await running.publish(topics.scores, [score(at=WALL.now(), application_id=before, customer_id=customer)])
        await running.read([topics.notifications], lambda s: len(_events(s, NotificationSent)) >= 1)

        own_redis.stop()
        during, other = _unique("out")
        await running.publish(topics.scores, [score(at=WALL.now(), application_id=during, customer_id=other)])
        seen = await running.read(
            [topics.windows, topics.notifications], lambda s: any(n.about == "delay" for n in _events(s, NotificationSent)), timeout_s=60
        )
        (delay,) = _events(seen, DecisionDelayed)
        assert delay.application_id == during and not [d for d in _events(seen, WindowOpened) if d.application_id == during]
        own_redis.start()

        def decided(s: list[ReadRecord]) -> bool:
            return any(n.decision_id == delay.decision_id and n.about == "decision" for n in _events(s, NotificationSent))

        seen = await running.read([topics.windows, topics.notifications], decided, timeout_s=120, settle_s=3)
        decisions = [d for d in [*_events(seen, WindowOpened), *_events(seen, WindowClosed)] if d.application_id == during]
        assert len(decisions) == 1 and decisions[0].decision_id == delay.decision_id  # exactly one, under the reference told
        delays = [r for r in seen if isinstance(r.event, DecisionDelayed)]
        told = [n for n in _events(seen, NotificationSent) if n.about == "delay"]
        assert len(delays) == 1 and len(told) == 1  # one notice, told once
        assert "not about your credit" in told[0].body or "与您的信用无关" in told[0].body
        assert told[0].reference == reference_of(decisions[0].decision_id)
    finally:
        running.fleet.stop()
