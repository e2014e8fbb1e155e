"""Redis AUTH through REDIS_URL, and the customer-data API of a running policy process: its own
listener, bearer tokens, one 401 for everyone, a rate limit per token."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ResponseError

from services.policy.windows.adapters.redis_book import RedisBook
from services.policy.windows.decisions import book_request, propose
from services.policy.windows.model import BookState
from shared.contracts import WindowOpened
from shared.redis_connection import make_redis
from shared.settings import Settings
from tests.clocks import WALL
from tests.e2e.conftest import start_fleet
from tests.unit.policy.factories import NOW, default_policy, score


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_with_password(tmp_path: Path) -> tuple[int, str]:
    server = shutil.which("redis-server")
    assert server, "the local platform installs redis-server"
    port, password = _free_port(), "s3cret-for-the-test"
    process = subprocess.Popen(
        [server, "--bind", "127.0.0.1", "--port", str(port), "--requirepass", password, "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port, password
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_the_limit_store_works_through_redis_auth_and_refuses_without_it(redis_with_password: tuple[int, str]) -> None:
    port, password = redis_with_password
    authed = make_redis(Settings(redis_url=f"redis://:{password}@127.0.0.1:{port}/0"))
    try:
        request, terms = book_request(propose(score(at=NOW), default_policy(), NOW), default_policy())
        book = RedisBook(authed, "cw:auth:")
        await book.install(BookState(), "g1", now_ms=0)
        book.guard.adopt("g1")
        (allocation,) = await book.post([request], {request.budget: terms})
        assert allocation.fresh and allocation.granted > 0
    finally:
        await authed.aclose()
    anonymous = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises((AuthenticationError, ResponseError)):
            await anonymous.ping()
    finally:
        await anonymous.aclose()


async def test_customer_data_is_served_on_its_own_listener_only_to_a_caller_with_a_token(
    endpoints: dict[str, str], namespace: str, log_root: Path
) -> None:
    import httpx

    token = secrets.token_urlsafe(32)
    running = await start_fleet(
        endpoints, namespace, log_root, services=("policy",),
        env={"CW_API_TOKENS": json.dumps({"ops-e2e": token}), "CW_API_BURST": "4", "CW_API_RATE_PER_S": "0.2"},
    )  # fmt: skip
    try:
        applied = score(at=WALL.now(), application_id="app_api_000001", customer_id="cus_api_00000001", grade="D", pd=0.18, income=100_000)
        await running.publish(running.settings.topics.scores, [applied])
        seen = await running.read([running.settings.topics.windows], lambda s: any(isinstance(r.event, WindowOpened) for r in s))
        (opened,) = [r.event for r in seen if isinstance(r.event, WindowOpened)]
        api, service = running.fleet.api_address("policy-0"), running.fleet.http_address("policy-0")
        assert api and service and api != service
        ok = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=api, timeout=5) as client:
            refusals = [
                await client.get(f"/limits/{customer}", headers=headers)
                for customer in (opened.customer_id, "cus_nobody_000000")
                for headers in ({}, {"Authorization": "Bearer not-the-token"})
            ]
            found = await client.get(f"/limits/{opened.customer_id}", headers=ok)
            missing = await client.get("/limits/cus_nobody_000000", headers=ok)
            statuses = [(await client.get(f"/limits/{opened.customer_id}", headers=ok)).status_code for _ in range(3)]
            health_here = await client.get("/health")
        async with httpx.AsyncClient(base_url=service, timeout=5) as client:
            on_service_port = await client.get(f"/limits/{opened.customer_id}", headers=ok)
            health = await client.get("/health")
            metrics = await client.get("/metrics")
    finally:
        running.fleet.stop()

    assert {r.status_code for r in refusals} == {401} and len({r.content for r in refusals}) == 1
    assert found.status_code == 200 and (found.json()["limit"], found.json()["decision_id"]) == (opened.limit, str(opened.decision_id))
    assert missing.status_code == 404
    assert statuses[-1] == 429  # a burst of 4, then 0.2 a second
    assert health_here.status_code == 401  # nothing is open on the API's listener
    assert on_service_port.status_code == 404  # customer data is not on the probes' listener
    assert health.status_code == 200 and metrics.status_code == 200
    assert running.fleet.logged("policy-0", "api_request", "ops-e2e", opened.customer_id)
    log_text = running.fleet.processes["policy-0"].log_path.read_text()
    assert token not in log_text
