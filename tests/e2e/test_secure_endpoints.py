"""Redis AUTH through REDIS_URL, and Kafka SASL/TLS through settings."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ResponseError

from services.policy.decisions import propose, request_for
from services.policy.ports import BookState
from services.policy.redis_book import RedisBook
from shared.redis_connection import make_redis
from shared.settings import Settings
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
        request = request_for(propose(score(), default_policy(), NOW), default_policy())
        book = RedisBook(authed, "cw:auth:")
        await book.install(BookState(), "g1", now_ms=0)
        book.guard.adopt("g1")
        (allocation,) = await book.allocate([request])
        assert allocation.fresh and allocation.granted > 0
    finally:
        await authed.aclose()
    anonymous = Redis.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises((AuthenticationError, ResponseError)):
            await anonymous.ping()
    finally:
        await anonymous.aclose()
