"""A producer whose sequence broke is replaced, and the batch retried: nothing after a gap is written."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, OutOfOrderSequenceNumber

from shared.contracts import DeadLetter
from shared.messaging import Outbox, ProducerReplaced, is_transient
from shared.messaging.outbox import breaks_sequence
from tests.clocks import NOW, clock_at


class FlakySender:
    """A RecordSender whose current producer fails every send with `error` until it is replaced."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error
        self.generation = 0
        self.sent: list[tuple[int, bytes]] = []
        self.replaced = 0

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, topic: str, key: bytes, value: bytes, headers: dict[str, str], correlation_id: str) -> Any:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.error is not None and self.generation == 0:
            future.set_exception(self.error)
        else:
            self.sent.append((self.generation, key))
            future.set_result(None)
        return future

    async def recover(self, error: BaseException, generation: int) -> bool:
        if not breaks_sequence(error):
            return False
        if generation == self.generation:
            self.generation += 1
            self.replaced += 1
        return True


def _letters(n: int) -> list[tuple[str, DeadLetter]]:
    return [
        (
            "credit.deadletter",
            DeadLetter(
                correlation_id=f"app_{i}", producer="test", source_topic="credit.applications", source_partition=0,
                source_offset=i, error_type="undecodable", error="x", source_key=f"cus_{i:04d}", payload_b64="",
                failed_by="test",
            ),
        )
        for i in range(n)
    ]


async def test_an_out_of_order_sequence_replaces_the_producer_and_the_retry_goes_through_the_new_one() -> None:
    sender = FlakySender(OutOfOrderSequenceNumber())
    outbox = Outbox(sender, service="test", clock=clock_at(NOW))
    with pytest.raises(ProducerReplaced) as raised:
        await outbox.publish(_letters(3))
    assert is_transient(raised.value)  # the handler retries the batch
    assert sender.replaced == 1 and sender.sent == []
    assert await outbox.publish(_letters(3)) == 3
    assert {generation for generation, _ in sender.sent} == {1}


async def test_other_failures_leave_the_producer_alone() -> None:
    sender = FlakySender(KafkaTimeoutError())
    with pytest.raises(KafkaTimeoutError):
        await Outbox(sender, service="test", clock=clock_at(NOW)).publish(_letters(2))
    assert sender.replaced == 0


def test_the_errors_that_break_an_idempotent_producers_sequence() -> None:
    assert breaks_sequence(OutOfOrderSequenceNumber())
    assert not breaks_sequence(KafkaTimeoutError())


class _Producer:
    """Stands in for an AIOKafkaProducer: `start` fails while the broker is away."""

    def __init__(self, starts: bool) -> None:
        self.starts, self.started, self.stopped = starts, False, False

    async def start(self) -> None:
        if not self.starts:
            raise KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 19092)]")
        self.started = True

    async def stop(self) -> None:
        self.stopped = True


async def test_a_replacement_that_cannot_start_leaves_the_old_producer_and_is_tried_again() -> None:
    from shared.messaging.outbox import ProducerSender
    from shared.settings import Settings

    sender = ProducerSender(Settings(), client_id="test")
    old = _Producer(starts=True)
    sender._producer = old  # type: ignore[assignment]
    made = iter([_Producer(starts=False), _Producer(starts=True)])
    sender._make = lambda: next(made)  # type: ignore[method-assign]
    with pytest.raises(KafkaConnectionError):  # transient: the handler retries the batch later
        await sender.recover(OutOfOrderSequenceNumber(), sender.generation)
    # an unstarted producer left in place would wait for metadata forever on the next send
    assert sender._producer is old and sender.generation == 0
    assert await sender.recover(OutOfOrderSequenceNumber(), sender.generation)
    assert sender._producer is not old and sender._producer.started and sender.generation == 1  # type: ignore[attr-defined]
