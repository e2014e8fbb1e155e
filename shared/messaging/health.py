"""Whether each consumer of a process makes progress, and why not: no tight loops on a failing batch.

A handler's batch runs under `ServiceHealth.watch` (`batches.BatchRunner` does it). When the batch
fails (a bug, Redis out of memory or refusing writes, a lost book: anything not retried away inside
the handler), the watch backs off with jitter before the batch is rewound and redelivered, doubling
the wait on every failure in a row, so a failing dependency is not hammered and the log is not
flooded. While a
consumer fails it is *stuck*: `creditwindow_consumer_stuck{consumer}` is 1 and `/health` answers
503 naming the consumer, since when and the error. Other conditions (the policy's book being
rebuilt) are reported the same way with `report`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from shared.clock import Clock
from shared.messaging.retries import is_transient

__all__ = ["Problem", "ServiceHealth"]

log = structlog.get_logger("creditwindow.messaging")


@dataclass(slots=True)
class Problem:
    """Why a part of the service is not doing its job, since when, and how often it failed in a row."""

    reason: str
    since: float  # seconds since the epoch, by the service's clock
    failures: int = 1

    def as_dict(self) -> dict[str, object]:
        return {"reason": self.reason, "since": round(self.since, 3), "failures": self.failures}


class ServiceHealth:
    """The consumers' progress and other conditions that make a service not ready."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        clock: Clock,
        initial_s: float = 0.5,
        max_s: float = 30.0,
        jitter: float = 0.3,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        spread: Callable[[], float] = random.random,
    ) -> None:
        self.problems: dict[str, Problem] = {}
        self._initial_s, self._max_s, self._jitter = initial_s, max_s, jitter
        self._sleep, self._spread, self._clock = sleep, spread, clock
        self._stuck: Gauge | None = None
        self._failures: Counter | None = None
        if registry is not None:
            self._stuck = Gauge("creditwindow_consumer_stuck", "1 while a consumer's batches fail (see /health for why).", ["consumer"], registry=registry)
            self._failures = Counter(
                "creditwindow_batch_failures_total", "Batches that failed and were rewound, by consumer and kind.", ["consumer", "kind"], registry=registry
            )

    @property
    def ready(self) -> bool:
        return not self.problems

    def backoff_s(self, failures: int) -> float:
        """The wait before a batch that failed `failures` times in a row is redelivered."""
        base = min(self._max_s, self._initial_s * 2 ** max(0, failures - 1))
        return base * (1 + self._jitter * self._spread())

    async def watch(self, consumer: str, batch: Callable[[], Awaitable[None]]) -> None:
        """Run one batch; on failure record why, back off, and re-raise so the batch is redelivered."""
        try:
            await batch()
        except Exception as exc:
            kind = "transient" if is_transient(exc) else "error"
            problem = self.problems.get(consumer)
            failures = problem.failures + 1 if problem else 1
            reason = f"{kind}: {type(exc).__name__}: {exc}"[:300]
            self.problems[consumer] = Problem(reason, problem.since if problem else self._clock.now().timestamp(), failures)
            if self._stuck is not None and self._failures is not None:
                self._stuck.labels(consumer).set(1)
                self._failures.labels(consumer, kind).inc()
            delay = self.backoff_s(failures)
            log.error("batch_failed_backing_off", consumer=consumer, failures=failures, retry_in_s=round(delay, 2), kind=kind, error=reason)
            await self._sleep(delay)
            raise
        if self.problems.pop(consumer, None) is not None:
            log.info("consumer_recovered", consumer=consumer)
            if self._stuck is not None:
                self._stuck.labels(consumer).set(0)

    def report(self, part: str, problem: str | None) -> None:
        """Mark a part of the service not ready (with why), or ready again (None)."""
        if problem is None:
            if self.problems.pop(part, None) is not None:
                log.info("ready_again", part=part)
            return
        if part not in self.problems:
            log.warning("not_ready", part=part, reason=problem)
            self.problems[part] = Problem(problem, self._clock.now().timestamp())
        else:
            self.problems[part].reason = problem
