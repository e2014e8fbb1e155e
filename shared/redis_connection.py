"""The Redis client factory: one pooled asyncio client per process, made at start, never at import.

With `CW_REDIS_SENTINELS` the client finds the master through Sentinel (redis-py's Sentinel support):
every new connection asks the Sentinels where the master is, and a connection to a master that was
demoted is dropped. A failover still surfaces to the caller, as `ConnectionError` (the old master
gone), `MasterNotFoundError` (no master elected yet) or "the previous master is now a slave": all
transient (shared/messaging/retries.py), so the batch is retried until the new master answers.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from shared.messaging import stages
from shared.settings import Settings

__all__ = ["TimedRedis", "make_redis", "text"]


class _TimedPipeline(Pipeline):
    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        started = perf_counter()
        try:
            return await super().execute(raise_on_error)
        finally:
            stages.add("redis", perf_counter() - started)


class TimedRedis(Redis):
    """redis-py's client, each round trip (a command, a script, a pipeline) added to the running
    batch's `redis` stage (shared/messaging/stages.py)."""

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        started = perf_counter()
        try:
            return await super().execute_command(*args, **options)
        finally:
            stages.add("redis", perf_counter() - started)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return _TimedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


def make_redis(settings: Settings, *, socket_timeout: float | None = 5.0, connect_timeout: float = 2.0) -> Redis:
    """A client that retries a dropped connection briefly; longer outages surface to the caller."""
    kwargs: dict[str, Any] = {
        "decode_responses": False,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "health_check_interval": 15,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3),
    }
    if settings.redis_ssl_ca_certs:
        kwargs["ssl_ca_certs"] = str(settings.redis_ssl_ca_certs)
    if not settings.redis_sentinels:
        return TimedRedis.from_url(settings.redis_dsn, **kwargs)
    # The master comes from the Sentinels; REDIS_URL, when set, still gives the password, the database and TLS.
    if settings.redis_url:
        url = urlsplit(settings.redis_url)
        if url.password:
            kwargs["password"] = unquote(url.password)
        if url.username:
            kwargs["username"] = unquote(url.username)
        if url.path.strip("/").isdigit():
            kwargs["db"] = int(url.path.strip("/"))
        if url.scheme == "rediss":
            kwargs["ssl"] = True
    else:
        kwargs.pop("ssl_ca_certs", None)  # TLS only with a rediss:// URL
    sentinel = Sentinel(
        settings.sentinel_addresses,
        sentinel_kwargs={"socket_timeout": 1.0, "socket_connect_timeout": 1.0},
    )
    return sentinel.master_for(settings.redis_master_name, redis_class=TimedRedis, **kwargs)


def text(value: bytes | str | int | float | None) -> str:
    """A Redis reply as text (the client returns bytes): None is empty."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
