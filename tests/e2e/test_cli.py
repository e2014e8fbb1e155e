"""The operators' CLI as an operator runs it (a subprocess), on the real broker and Redis.

Each test has its own topic and Redis namespace, passed to the CLI in its environment.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from redis.asyncio import Redis

from devtools.germancredit import applications
from shared.contracts import DeadLetter, DrawdownRefused, DrawdownRequested, ScoreComputed, WindowClosed, WindowOpened
from shared.messaging import ensure_topics
from shared.messaging.topic_io import Publisher, ReadRecord, TopicReader, read_to_end
from shared.settings import Settings
from shared.wire import REPLAY_HEADER, encode
from tests.clocks import WALL
from tests.conftest import settings_for
from tests.e2e.conftest import RunningFleet, start_fleet
from tests.unit.notification.factories import opened
from tests.unit.policy.factories import default_policy, score

_ids = itertools.count(1)


def _score(points: float = 600.0, **kwargs: object) -> ScoreComputed:
    n = next(_ids)
    return score(at=WALL.now(), application_id=f"app_cli_{n:06d}_{time.time_ns() % 10**8}", customer_id=f"cus_cli_{n:06d}_{time.time_ns() % 10**6:06d}", points=points, **kwargs)  # type: ignore[arg-type]


def _policy_file(path: Path, version: int, **changes: object) -> Path:
    data = default_policy(**changes).model_dump(mode="json")
    data["version"] = version
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
async def settings(endpoints: dict[str, str], namespace: str) -> Settings:
    made = settings_for(endpoints, namespace)
    await ensure_topics(made)
    return made


@pytest.fixture
def cli_env(endpoints: dict[str, str], namespace: str) -> dict[str, str]:
    return {**os.environ, **endpoints, "CW_TOPIC_NAMESPACE": namespace, "COLUMNS": "200", "CW_LOG_FORMAT": "json"}


async def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`creditwindow ARGS` in a subprocess, as an operator runs it."""
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "creditwindow", *args], env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result.stdout


async def _publish(settings: Settings, topic: str, events: list) -> None:  # type: ignore[type-arg]
    async with Publisher(settings) as publisher:
        await asyncio.gather(*[await publisher.send(topic, e) for e in events])


async def _read_until(settings: Settings, topics: list[str], done, timeout_s: float = 60) -> list[ReadRecord]:  # type: ignore[no-untyped-def]
    async with TopicReader(settings, topics) as reader:
        seen = await reader.until(done, timeout_s=timeout_s)
    assert done(seen), f"timed out waiting on {topics}: {len(seen)} records"
    return seen


@pytest.fixture
async def policy_fleet(endpoints: dict[str, str], namespace: str, log_root: Path) -> AsyncIterator[RunningFleet]:
    running = await start_fleet(endpoints, namespace, log_root, services=("policy",))
    try:
        yield running
    finally:
        running.fleet.stop()


# --- tail -----------------------------------------------------------------------------------------


async def test_tail_shows_a_published_application_decoded_and_filtered(settings: Settings, cli_env: dict[str, str]) -> None:
    (application,) = applications(f"tail{time.time_ns() % 10**9}", count=1)
    await _publish(settings, settings.topics.applications, [application])

    lines = _ok(await cli(cli_env, "tail", "applications", "--from-beginning", "--json")).splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert (record["topic"], record["event_type"], record["key"]) == (settings.topics.applications, "ApplicationReceived", application.customer_id)
    assert record["event"]["application_id"] == application.application_id

    table = _ok(await cli(cli_env, "tail", "credit.applications", "scores", "--from-beginning", "--customer", application.customer_id))
    assert application.customer_id in table and "ApplicationReceived" in table and f"asks {application.facts.requested_amount:,}" in table
    assert _ok(await cli(cli_env, "tail", "applications", "--from-beginning", "--type", "WindowClosed", "--json")) == ""
    assert _ok(await cli(cli_env, "tail", "applications", "--from-beginning", "--customer", "cus_nobody_000001", "--json")) == ""


async def test_tail_follows_new_events_until_its_limit(settings: Settings, cli_env: dict[str, str]) -> None:
    (application,) = applications(f"follow{time.time_ns() % 10**9}", count=1)
    follower = subprocess.Popen(
        [sys.executable, "-m", "creditwindow", "tail", "applications", "--json", "--limit", "1"],
        env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while follower.poll() is None and time.monotonic() < deadline:
            await _publish(settings, settings.topics.applications, [application])  # until the follower has started and sees one
            await asyncio.sleep(1.0)
        out, errors = follower.communicate(timeout=10)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, errors
    (line,) = out.splitlines()
    assert json.loads(line)["event"]["application_id"] == application.application_id


# --- policy -----------------------------------------------------------------------------------------


async def test_policy_apply_refuses_an_invalid_file_naming_the_field(policy_fleet: RunningFleet, cli_env: dict[str, str], tmp_path: Path) -> None:
    bad = _policy_file(tmp_path / "bad.yaml", 2)
    bad.write_text(bad.read_text().replace("apr: 0.073", "apr: 0.5"))
    result = await cli(cli_env, "policy", "apply", str(bad), "--yes")
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "grades.A.apr: Input should be less than or equal to 0.36" in message and "is not a valid policy" in message
    assert await read_to_end(policy_fleet.settings, [policy_fleet.settings.topics.policy]) == []


async def test_policy_apply_signs_and_publishes_a_valid_file_that_the_fleet_applies(policy_fleet: RunningFleet, cli_env: dict[str, str], tmp_path: Path) -> None:
    settings = policy_fleet.settings
    candidate = _policy_file(tmp_path / "strict.yaml", 2, cutoffs__individual=700.0)

    diff = _ok(await cli(cli_env, "policy", "diff", str(candidate)))
    assert "default@1" in diff and "default@2" in diff and "+  individual: 700.0" in diff

    applied = json.loads(_ok(await cli(cli_env, "policy", "apply", str(candidate), "--yes", "--json")))
    assert (applied["applied"], applied["previous"], applied["topic"]) == ("default@2", "default@1", settings.topics.policy)
    shown = json.loads(_ok(await cli(cli_env, "policy", "show", "--json")))
    assert shown["policy"] == "default@2" and shown["document"]["cutoffs"]["individual"] == 700.0

    decided: WindowOpened | WindowClosed | None = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (decided is None or decided.policy_version != "default@2"):
        probe = _score(points=650)  # the replica applies the update asynchronously: probe until it has
        await _publish(settings, settings.topics.scores, [probe])
        seen = await _read_until(settings, [settings.topics.windows], lambda s, a=probe.application_id: any(getattr(r.event, "application_id", None) == a for r in s))
        decided = next(r.event for r in seen if getattr(r.event, "application_id", None) == probe.application_id)  # type: ignore[assignment]
    assert isinstance(decided, WindowClosed) and decided.policy_version == "default@2"
    assert (decided.category, decided.reason) == ("credit", "score_below_cutoff")

    again = await cli(cli_env, "policy", "apply", str(candidate), "--yes")
    assert again.returncode == 1 and "would be refused by the fleet (replayed)" in " ".join(again.stderr.split())


async def test_keys_new_makes_a_key_the_cli_signs_with_and_only_the_fleets_ring_decides_what_it_accepts(
    policy_fleet: RunningFleet, cli_env: dict[str, str], tmp_path: Path
) -> None:
    settings = policy_fleet.settings
    key_file = tmp_path / "ops-e2e.key"
    made = json.loads(_ok(await cli(cli_env, "keys", "new", "ops-e2e", "--out", str(key_file), "--retire-at", "2099-01-01T00:00:00+00:00", "--json")))
    assert key_file.stat().st_mode & 0o777 == 0o600 and made["key_id"] == "ops-e2e"
    again = await cli(cli_env, "keys", "new", "ops-e2e", "--out", str(key_file))
    assert again.returncode == 1 and "never overwritten" in again.stderr
    candidate = _policy_file(tmp_path / "v2.yaml", 2)
    operator = {**cli_env, "CW_OPERATOR_PRIVATE_KEY_FILE": str(key_file)}

    # Not in the ring: the CLI says so and signs nothing.
    unknown = await cli(operator, "policy", "apply", str(candidate), "--yes")
    assert unknown.returncode == 1 and "not in the fleet's public ring" in " ".join(unknown.stderr.split())

    # In the CLI's ring but not in the fleet's: signed and published, and the fleet refuses it.
    ring = {**Settings().model_dump(mode="json")["operator_public_keys"], "ops-e2e": {"public_key": made["public_key"], "retire_at": made["retire_at"]}}
    trusting = {**operator, "CW_OPERATOR_PUBLIC_KEYS": json.dumps(ring)}
    listed = json.loads(_ok(await cli(trusting, "keys", "list", "--json")))
    assert [(k["key_id"], k["may_sign"], k["yours"]) for k in listed["keys"]] == [("dev", True, False), ("ops-e2e", True, True)]
    _ok(await cli(trusting, "policy", "apply", str(candidate), "--yes"))
    seen = await _read_until(settings, [settings.topics.deadletter], lambda s: any(isinstance(r.event, DeadLetter) for r in s))
    (letter,) = [r.event for r in seen if isinstance(r.event, DeadLetter)]
    assert letter.error_type == "policy_unknown_key" and "ops-e2e" in letter.error
    shown = json.loads(_ok(await cli(cli_env, "policy", "show", "--json")))
    assert shown["policy"] == "default@1"


# --- dlq ----------------------------------------------------------------------------------------


async def test_dlq_replay_republishes_each_letter_to_its_request_topic_once(policy_fleet: RunningFleet, cli_env: dict[str, str]) -> None:
    settings = policy_fleet.settings
    topics = settings.topics
    # A request the policy refuses now, and a letter left by an older release for a request that is fine today.
    async with Publisher(settings) as publisher:
        await (await publisher.send_raw(topics.lending_requests, b'{"event_type": "DrawdownRequested"}', key=b"cus_dlq_broken01", headers=[("event_type", b"DrawdownRequested")]))
    fine = DrawdownRequested(correlation_id="dd_dlq_fine_0001", drawdown_id=f"dd_dlq_{time.time_ns() % 10**9}", customer_id="cus_dlq_fine0001", amount=1_000)
    wire = encode(fine)
    old_letter = DeadLetter(
        correlation_id=fine.correlation_id, producer="policy", error="schema_version 1 is not accepted", error_type="invalid",
        failed_by="policy", source_topic=topics.lending_requests, source_partition=0, source_offset=0, source_key=fine.customer_id,
        payload_b64=base64.b64encode(wire.value).decode(), headers=wire.headers,
    )  # fmt: skip
    await _publish(settings, topics.deadletter, [old_letter])
    await _read_until(settings, [topics.deadletter], lambda s: sum(isinstance(r.event, DeadLetter) for r in s) >= 2)

    listed = json.loads(_ok(await cli(cli_env, "dlq", "list", "--json")))
    assert {row["error_type"] for row in listed} == {"invalid"} and len(listed) == 2
    refused = next(row for row in listed if row["id"] != str(old_letter.event_id))
    assert refused["key"] == "cus_dlq_broken01" and refused["replayed_to"] is None
    shown = json.loads(_ok(await cli(cli_env, "dlq", "show", str(old_letter.event_id)[:8], "--json")))
    assert fine.drawdown_id in shown["payload"]

    replayed = json.loads(_ok(await cli(cli_env, "dlq", "replay", "--all", "--json")))
    assert sorted(r["id"] for r in replayed["replayed"]) == sorted(row["id"] for row in listed)

    # the fixed one is answered now (no window: refused as strategy); the broken one is refused again and says it was a replay
    seen = await _read_until(
        settings, [topics.lending_results, topics.deadletter],
        lambda s: any(getattr(r.event, "drawdown_id", None) == fine.drawdown_id for r in s)
        and any(isinstance(r.event, DeadLetter) and r.event.replayed_from == refused["id"] for r in s),
    )  # fmt: skip
    assert any(isinstance(r.event, DrawdownRefused) and r.event.drawdown_id == fine.drawdown_id for r in seen)

    second = json.loads(_ok(await cli(cli_env, "dlq", "replay", "--all", "--json")))
    assert second["replayed"] == [] and second["refused"] == []
    reasons = {s["id"]: s["why"] for s in second["skipped"]}
    assert reasons[str(old_letter.event_id)].startswith("already replayed to ") and reasons[refused["id"]].startswith("already replayed to ")
    assert any(why.startswith(f"a replay of {refused['id'][:8]}") for why in reasons.values())

    replays = [r for r in await read_to_end(settings, [topics.lending_requests]) if any(k == REPLAY_HEADER for k, _ in r.record.headers)]
    assert sorted(dict(r.record.headers)[REPLAY_HEADER].decode() for r in replays) == sorted(row["id"] for row in listed)


async def test_dlq_replay_refuses_letters_from_result_topics_and_crafted_ones_naming_the_decisions_topic(
    settings: Settings, cli_env: dict[str, str]
) -> None:
    topics = settings.topics
    decision = opened("en", partner_id="p1")
    await _publish(settings, topics.windows, [decision])  # a decision on the log, at windows[p]@0
    (at,) = [r for r in await read_to_end(settings, [topics.windows])]
    genuine = encode(decision).value
    forged = genuine.replace(b'"limit":', b'"limit":9', 1)

    def letter(source: str, payload: bytes, *, error_type: str = "invalid", partition: int = 0, offset: int = 0, **headers: str) -> DeadLetter:
        return DeadLetter(
            correlation_id="dlq-refused", producer="scoring", error="crafted", error_type=error_type, failed_by="scoring", source_topic=source,
            source_partition=partition, source_offset=offset, source_key=decision.customer_id, payload_b64=base64.b64encode(payload).decode(),
            headers={"event_type": json.loads(payload)["event_type"], **headers},
        )  # fmt: skip

    old_score = encode(_score())
    letters = {
        "a score": letter(topics.scores, old_score.value),
        "a forged decision": letter(topics.windows, forged),
        "a forged webhook give-up": letter(topics.windows, forged, error_type="webhook_undeliverable", partition=at.record.partition, webhook_partner="p1"),
        "a webhook give-up at nothing": letter(topics.windows, genuine, error_type="webhook_undeliverable", offset=7, webhook_partner="p1"),
    }
    await _publish(settings, topics.deadletter, list(letters.values()))
    await _read_until(settings, [topics.deadletter], lambda s: sum(isinstance(r.event, DeadLetter) for r in s) >= len(letters))

    result = await cli(cli_env, "dlq", "replay", "--all", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    body = json.loads(result.stdout)
    assert body["replayed"] == [] and body["redelivered"] == []
    why = {row["id"]: row["why"] for row in body["refused"]}
    assert why[str(letters["a score"].event_id)].startswith("credit.scores is a result topic: a dead letter goes back only to the request topic it came from; results are re-derived by the fleet")
    assert "cache rebuild --yes" in why[str(letters["a forged decision"].event_id)]
    assert "the letter's bytes are not the record at" in why[str(letters["a forged webhook give-up"].event_id)]
    assert why[str(letters["a webhook give-up at nothing"].event_id)] == f"not queued: nothing at {topics.windows}[0]@7"

    text = await cli(cli_env, "dlq", "replay", str(letters["a forged decision"].event_id)[:8])
    assert text.returncode == 1 and "refused" in text.stdout and "results are re-derived by the fleet" in " ".join(text.stdout.split())
    assert [r.record.value for r in await read_to_end(settings, [topics.windows])] == [genuine]  # nothing sent to the decisions
    assert await read_to_end(settings, [topics.scores]) == []


# --- simulate -----------------------------------------------------------------------------------------


async def test_simulate_compares_a_candidate_with_the_active_policy_without_side_effects(settings: Settings, cli_env: dict[str, str], tmp_path: Path) -> None:
    strong, middling, weak = _score(points=600), _score(points=530), _score(points=400)
    await _publish(settings, settings.topics.scores, [strong, middling, weak])
    candidate = _policy_file(tmp_path / "candidate.yaml", 2, cutoffs__individual=560.0)

    result = json.loads(_ok(await cli(cli_env, "simulate", "--policy", str(candidate), "--json")))
    assert (result["active"], result["candidate"], result["applications"]) == ("default@1", "default@2", 3)
    individual = result["segments"]["individual"]
    assert (individual["before"]["opened"], individual["after"]["opened"]) == (2, 1)
    assert individual["before"]["approval_rate"] == pytest.approx(2 / 3) and individual["after"]["approval_rate"] == pytest.approx(1 / 3)
    assert individual["after"]["total_limit"] < individual["before"]["total_limit"]
    assert individual["after"]["expected_loss"] < individual["before"]["expected_loss"]
    (changed,) = result["changed"]
    assert (changed["customer_id"], changed["after"]) == (middling.customer_id, "closed credit/score_below_cutoff")

    text = _ok(await cli(cli_env, "simulate", "--policy", str(candidate)))
    assert "1 application(s) would be decided differently" in text and middling.customer_id in text
    assert await read_to_end(settings, [settings.topics.windows, settings.topics.shadow_windows, settings.topics.policy]) == []
    redis = Redis.from_url(settings.redis_dsn)
    try:
        assert [key async for key in redis.scan_iter(match=f"{settings.redis_prefix}*")] == []
    finally:
        await redis.aclose()


# --- shadow -----------------------------------------------------------------------------------------


def _serving_address(log: Path, process: subprocess.Popen[bytes], timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        match = re.search(r"Uvicorn running on (http://[0-9.]+:[0-9]+)", log.read_text(errors="replace"))
        if match:
            try:
                if httpx.get(f"{match.group(1)}/health", timeout=2).status_code == 200:
                    return match.group(1)
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    raise TimeoutError(log.read_text())


async def test_a_shadow_policy_decides_beside_the_live_one_without_effects_and_is_reported(
    endpoints: dict[str, str], namespace: str, log_root: Path, settings: Settings, cli_env: dict[str, str], tmp_path: Path
) -> None:
    topics = settings.topics
    candidate = _policy_file(tmp_path / "candidate.yaml", 2, cutoffs__individual=560.0)
    log = tmp_path / "shadow.log"
    with log.open("wb") as out:
        shadow = subprocess.Popen(
            [sys.executable, "-m", "creditwindow", "shadow", "run", "--policy", str(candidate), "--port", "0"],
            env=cli_env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        await asyncio.to_thread(_serving_address, log, shadow)
        strong, middling, weak = _score(points=600), _score(points=530), _score(points=400)
        await _publish(settings, topics.scores, [strong, middling, weak])
        async with Publisher(settings) as publisher:
            await (await publisher.send_raw(topics.scores, b"\x00garbage", key=b"cus_shadow_garbage"))
        shadowed = await _read_until(settings, [topics.shadow_windows], lambda s: sum(r.event is not None for r in s) >= 3)
        assert {r.event.policy_version for r in shadowed if r.event is not None} == {"default@2"}  # type: ignore[union-attr]

        # no effects: nothing live decided, nothing dead-lettered, nothing written to Redis
        assert await read_to_end(settings, [topics.windows, topics.deadletter, topics.notifications]) == []
        redis = Redis.from_url(settings.redis_dsn)
        try:
            assert [key async for key in redis.scan_iter(match=f"{settings.redis_prefix}*")] == []
        finally:
            await redis.aclose()

        live = await start_fleet(endpoints, namespace, log_root, services=("policy",))
        try:
            await _read_until(settings, [topics.windows], lambda s: sum(r.event is not None for r in s) >= 3)
        finally:
            live.fleet.stop()
    finally:
        shadow.send_signal(signal.SIGTERM)
        shadow.wait(timeout=30)

    report = json.loads(_ok(await cli(cli_env, "shadow", "report", "--json")))
    assert (report["shadow_policies"], report["joined"], report["agreed"]) == (["default@2"], 3, 2)
    assert report["agreement_rate"] == pytest.approx(2 / 3)
    individual = report["segments"]["individual"]
    assert (individual["live"]["opened"], individual["shadow"]["opened"]) == (2, 1)
    (difference,) = report["differences"]
    assert (difference["customer_id"], difference["after"]) == (middling.customer_id, "closed credit/score_below_cutoff")
    text = _ok(await cli(cli_env, "shadow", "report"))
    assert "66.7%" in text and middling.customer_id in text
