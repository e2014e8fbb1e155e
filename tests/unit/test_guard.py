"""A failing batch is backed off with jitter and reported stuck; the next good batch clears it."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from redis.exceptions import ResponseError

from shared.messaging import ServiceHealth
from tests.clocks import NOW, clock_at


async def test_a_failing_batch_backs_off_longer_each_time_and_the_consumer_is_stuck_until_one_succeeds() -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    registry = CollectorRegistry()
    health = ServiceHealth(registry, initial_s=0.5, max_s=4, jitter=0.5, sleep=sleep, spread=lambda: 0.5, clock=clock_at(NOW))

    async def misconf() -> None:
        raise ResponseError("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist")

    for _ in range(5):
        with pytest.raises(ResponseError):
            await health.watch("credit.scores", misconf)
    assert waits == [0.625, 1.25, 2.5, 5.0, 5.0]  # doubling, capped, a quarter added by the jitter drawn
    assert not health.ready
    problem = health.problems["credit.scores"]
    assert problem.failures == 5 and "MISCONF" in problem.reason and problem.reason.startswith("error:")
    assert registry.get_sample_value("creditwindow_consumer_stuck", {"consumer": "credit.scores"}) == 1
    assert registry.get_sample_value("creditwindow_batch_failures_total", {"consumer": "credit.scores", "kind": "error"}) == 5

    async def fine() -> None:
        return None

    await health.watch("credit.scores", fine)
    assert health.ready
    assert registry.get_sample_value("creditwindow_consumer_stuck", {"consumer": "credit.scores"}) == 0


def test_a_reported_condition_makes_the_service_not_ready_until_cleared() -> None:
    health = ServiceHealth(clock=clock_at(NOW))
    health.report("book", "the book's generation is gone: rebuilding from credit.windows")
    assert not health.ready and "rebuilding" in health.problems["book"].reason
    health.report("book", None)
    assert health.ready
