"""WAIT before publishing: a write the replica did not take in time is not durable, so nothing that
rests on it is published; the book keeps working through Sentinel after the replica is back."""

from __future__ import annotations

import os
import signal
import time

import pytest

from devtools.cluster import LocalCluster
from services.policy.windows.adapters.redis_book import RedisBook
from services.policy.windows.model import BookState
from shared.redis_connection import make_redis
from shared.redis_state import Durability, NotDurable
from shared.settings import Settings


async def test_a_write_no_replica_took_is_not_durable_until_the_replica_is_back(cluster: LocalCluster, settings: Settings) -> None:
    redis = make_redis(settings)
    book = RedisBook(redis, settings.redis_prefix, durability=Durability(replicas=1, timeout_ms=300))
    try:
        await book.install(BookState(), "g1", now_ms=int(time.time() * 1000))
        book.guard.adopt("g1")
        await book.remember([("app_dur_1", b'{"event":1}')])  # the replica is there: durable
        master = cluster.redis_master()
        replica = next(port for port in cluster.layout.redis if port != master)
        pid = cluster.redis_pid(replica)
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the replica stops acknowledging (for less than the Sentinels' 1.5 s)
        try:
            began = time.monotonic()
            with pytest.raises(NotDurable, match="reached 0 of 1 replicas"):
                await book.remember([("app_dur_2", b'{"event":2}')])
            assert time.monotonic() - began < 1.0  # a bounded WAIT, never `WAIT 1 0`
        finally:
            os.kill(pid, signal.SIGCONT)
        await book.remember([("app_dur_3", b'{"event":3}')])  # caught up: durable again
        # written on the master all the same, only not known to be durable in time: the batch is retried
        assert await redis.hget(f"{settings.redis_prefix}app:app_dur_2", "event") == b'{"event":2}'
    finally:
        await redis.aclose()


async def test_without_replicas_to_wait_for_a_write_is_not_waited_for(cluster: LocalCluster, settings: Settings) -> None:
    redis = make_redis(settings)
    book = RedisBook(redis, settings.redis_prefix)  # Durability(): the single-node default
    try:
        await book.install(BookState(), "g1", now_ms=int(time.time() * 1000))
        book.guard.adopt("g1")
        await book.remember([])  # nothing to write, nothing to wait for: no script at all
        assert book.guard.version == 0
    finally:
        await redis.aclose()
