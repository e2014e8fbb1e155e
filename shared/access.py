"""Who is calling, and how often they may: bearer tokens and per-token rate limits. Pure.

A caller presents `Authorization: Bearer <token>`; the token is compared with every configured one
in constant time (no early exit, digests of equal length), and the caller is known by the *name*
the token was configured under, never by the token. Each name has a token bucket: `burst` requests
at once, refilled at `rate_per_s`.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["RateLimiter", "TokenBucket", "caller_of"]


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


def caller_of(authorization: str | None, tokens: Mapping[str, str]) -> str | None:
    """The name of the token in an `Authorization: Bearer ...` header, or None (missing, malformed, unknown).

    Every configured token is compared, whichever matches, so the time taken says nothing about
    how much of a guess was right or which token it was close to.
    """
    scheme, _, presented = (authorization or "").strip().partition(" ")
    presented = presented.strip()
    candidate = _digest(presented)
    found: str | None = None
    for name, token in tokens.items():
        if hmac.compare_digest(candidate, _digest(token)) and token:
            found = name
    if scheme.lower() != "bearer" or not presented:
        return None
    return found


@dataclass(slots=True)
class TokenBucket:
    """`capacity` requests at once, refilled at `rate_per_s`; times are the caller's clock (seconds)."""

    rate_per_s: float
    capacity: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """0.0 when a request may go now (and it is counted), else the seconds until one may."""
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s


class RateLimiter:
    """A token bucket per caller name."""

    def __init__(self, *, rate_per_s: float, burst: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}

    def wait_s(self, caller: str, now: float) -> float:
        """0.0 when `caller` may make a request now (counted), else how long to wait."""
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = self._buckets[caller] = TokenBucket(self.rate_per_s, float(self.burst), float(self.burst), now)
        return bucket.take(now)

    @staticmethod
    def retry_after(wait_s: float) -> int:
        """A `Retry-After` header's whole seconds (at least 1)."""
        return max(1, math.ceil(wait_s))
