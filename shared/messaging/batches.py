"""One way to run a consumed batch, for every consumer group's handler.

`BatchRunner.run` owns the template: the batch runs under the consumer's watch (`health.py`: a
failure backs off, reports, and rewinds the batch); it is taken (decoded, the undecodable
dead-lettered: `intake.take`); the work is done, transient faults retried (`retries.py`) unless the
work retries its own steps; what the work refused is dead-lettered; its outcome is observed
(metrics); and only then are the offsets committed (`commits.py`). A handler names its events, its
work and what to observe, nothing else. The runner adds no work per record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from shared.contracts import Event
from shared.messaging.commits import commit_in_background
from shared.messaging.health import ServiceHealth
from shared.messaging.intake import Intake, intake, take
from shared.messaging.retries import retry_transient
from shared.ports import EventPublisher
from shared.settings import Settings
from shared.wire import Record, RefusedRecord

__all__ = ["BatchRunner", "refusals"]

E = TypeVar("E", bound=Event)
R = TypeVar("R")
T = TypeVar("T")


class BatchRunner:
    """Runs a service's batches: watched, taken, worked, refusals dead-lettered, observed, committed."""

    def __init__(self, *, settings: Settings, publisher: EventPublisher, health: ServiceHealth) -> None:
        self.settings = settings
        self.publisher = publisher
        self.health = health

    async def run(
        self,
        consumer: str,
        records: Sequence[Any],
        message: Any,
        accepted: Sequence[type[E]],
        work: Callable[[Intake[E]], Awaitable[R]],
        *,
        what: str | None,
        refused: Callable[[Intake[E], R], Sequence[RefusedRecord]] | None = None,
        observe: Callable[[R], object] | None = None,
        ignored: Sequence[type[Event]] = (),
        dead_letters: bool = True,
        skip_empty: bool = False,
    ) -> None:
        """Run one batch of `consumer` (see the module).

        `what` names the work for the retry log; None when the work retries its own steps (a step
        that must not run twice, or a retry of its own kind). `refused` picks the records the work
        refused (dead-lettered before the commit). `ignored`: event types sharing the topic that are
        not this consumer's. `dead_letters=False`: undecodable records are left to the topic's owner.
        `skip_empty`: no work when the batch holds none of `accepted`.
        """

        async def batch() -> None:
            if dead_letters:
                taken = await take(records, accepted, publisher=self.publisher, settings=self.settings, ignored=ignored)
            else:
                taken = intake(records, accepted, ignored)
            if not (skip_empty and not taken.events):
                result = await (self.retry(lambda: work(taken), what=what) if what is not None else work(taken))
                if refused is not None:
                    await self.dead_letter(refused(taken, result))
                if observe is not None:
                    observe(result)
            commit_in_background(message)

        await self.health.watch(consumer, batch)

    async def retry(self, operation: Callable[[], Awaitable[T]], *, what: str) -> T:
        """`operation`, transient faults retried with this service's backoff."""
        return await retry_transient(operation, settings=self.settings, what=what)

    async def dead_letter(self, refused: Sequence[RefusedRecord]) -> None:
        """Dead-letter `refused` (transient faults retried); nothing to do for none."""
        if refused:
            topic = self.settings.topics.deadletter
            await self.retry(lambda: self.publisher.dead_letter(topic, refused), what="dead_letter")


def refusals(
    events: Sequence[tuple[Record, E]], refused: Sequence[E], error_type: str, why: Callable[[E], str]
) -> list[RefusedRecord]:
    """The records that brought the `refused` events (found among `events` by identity), with
    `error_type` and why: an event the work refused is dead-lettered as the record it came in."""
    if not refused:
        return []
    owners = {id(event): record for record, event in events}
    return [RefusedRecord(owners[id(event)], error_type, why(event)) for event in refused]
