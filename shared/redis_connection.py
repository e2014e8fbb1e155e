"""The Redis client factory: one pooled asyncio client per process, made at start, never at import."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from shared.settings import Settings

__all__ = ["make_redis", "text"]


def make_redis(settings: Settings) -> Redis:
    """A client that retries a dropped connection briefly; longer outages surface to the caller."""
    kwargs: dict[str, object] = {
        "decode_responses": False,
        "socket_timeout": 5.0,
        "socket_connect_timeout": 2.0,
        "health_check_interval": 15,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3),
    }
    if settings.redis_ssl_ca_certs:
        kwargs["ssl_ca_certs"] = str(settings.redis_ssl_ca_certs)
    return Redis.from_url(settings.redis_dsn, **kwargs)  # type: ignore[arg-type]


def text(value: bytes | str | int | float | None) -> str:
    """A Redis reply as text (the client returns bytes): None is empty."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)
