"""A scheduled pause is enforced when it starts: the sweep closes the open windows it covers, once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from services.policy.control.state import PolicyState
from services.policy.windows.adapters.memory_book import MemoryBook
from services.policy.windows.underwriting import Underwriter
from shared.contracts import Event, WindowClosed, WindowOpened
from tests.clocks import NOW, clock_at
from tests.unit.policy.factories import default_policy, score


class Published:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, items: Iterable[tuple[str, Event]]) -> None:
        self.events.extend(event for _, event in items)

    async def dead_letter(self, topic: str, refused: Sequence[Any]) -> None:
        raise AssertionError("nothing is refused here")


async def test_the_sweep_closes_the_windows_of_a_scheduled_pause_when_it_starts_and_only_then() -> None:
    clock = clock_at(NOW)
    pause = {"regions": ["CN-SH"], "start": NOW + timedelta(hours=1), "end": NOW + timedelta(hours=2)}
    published = Published()
    underwriter = Underwriter(
        store=MemoryBook(), publisher=published, out_topic="credit.windows",
        state=PolicyState(default_policy(pauses__scheduled=[pause]), source="test"), clock=clock,
    )  # fmt: skip
    shanghai = score(region="CN-SH", customer_id="cus_sched_000001", application_id="app_sched_000001")
    beijing = score(region="CN-BJ", customer_id="cus_sched_000002", application_id="app_sched_000002")
    decided = await underwriter.decide([shanghai, beijing])
    assert all(isinstance(d, WindowOpened) for d in decided.decisions)
    assert await underwriter.sweep() == []  # not yet in force
    clock.set(NOW + timedelta(hours=1, minutes=5))
    (closed,) = await underwriter.sweep()
    assert isinstance(closed, WindowClosed) and closed.customer_id == "cus_sched_000001"
    assert (closed.category, closed.reason, closed.trigger) == ("strategy", "region_paused", "pause")
    assert await underwriter.sweep() == []  # enforced once
