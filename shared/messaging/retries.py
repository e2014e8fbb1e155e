"""Transient faults (a dependency restarting, a leader moving, a timeout) retried with backoff."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import structlog
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError
from redis import exceptions as redis_errors

from shared.settings import Settings

__all__ = ["Meanwhile", "is_transient", "retry_meanwhile", "retry_transient"]

T = TypeVar("T")
log = structlog.get_logger("creditwindow.messaging")

_TRANSIENT: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    redis_errors.TryAgainError,
    redis_errors.ReadOnlyError,  # a master demoted in a failover (its READONLY prefix is gone from the message)
    redis_errors.MasterDownError,
    KafkaConnectionError,
    KafkaTimeoutError,
    ConnectionError,
    TimeoutError,
    asyncio.TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    """A fault that goes away by itself: a dependency restarting, a leader moving, a timeout."""
    if isinstance(exc, _TRANSIENT):
        return True
    if isinstance(exc, redis_errors.ResponseError) and str(exc).startswith(("LOADING", "MASTERDOWN", "READONLY")):
        return True
    return isinstance(exc, KafkaError) and bool(getattr(exc, "retriable", False))


async def retry_transient(
    operation: Callable[[], Awaitable[T]],
    *,
    settings: Settings,
    what: str,
    give_up_after_s: float = 120.0,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Run `operation`, retrying transient faults with exponential backoff.

    After `give_up_after_s` the fault is raised: the batch is then rewound (never acked as done) and
    redelivered, so a long outage costs a redelivery, never a lost or half-done decision.
    """
    delay = settings.retry_initial_ms / 1000
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_after_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return await operation()
        except Exception as exc:
            if not is_transient(exc) or loop.time() + delay > deadline:
                raise
            if on_retry is not None:
                on_retry(exc)
            log.warning("transient_fault_retrying", what=what, attempt=attempt, delay_s=round(delay, 3), error=repr(exc)[:300])
            await asyncio.sleep(delay)
            delay = min(delay * 2, settings.retry_max_ms / 1000)


class Meanwhile(Protocol):
    """What to do while an operation keeps failing on a transient fault (e.g. tell the customers
    whose decisions wait): `due_in_s` says when it is next due (None: nothing left to do)."""

    def due_in_s(self) -> float | None: ...

    async def __call__(self, fault: BaseException) -> None: ...


async def retry_meanwhile(
    operation: Callable[[], Awaitable[T]], meanwhile: Meanwhile | None, *, settings: Settings, what: str, give_up_after_s: float = 120.0
) -> T:
    """`retry_transient` in slices that end when `meanwhile` is due: it runs between them (once per
    slice that ended on a transient fault), until the operation succeeds or `give_up_after_s` passes.
    Without `meanwhile`, `retry_transient` itself."""
    if meanwhile is None:
        return await retry_transient(operation, settings=settings, what=what, give_up_after_s=give_up_after_s)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + give_up_after_s
    while True:
        due_in = meanwhile.due_in_s()
        slice_s = max(0.5, min(give_up - loop.time(), give_up_after_s if due_in is None else due_in))
        try:
            return await retry_transient(operation, settings=settings, what=what, give_up_after_s=slice_s)
        except Exception as exc:
            if not is_transient(exc) or loop.time() >= give_up:
                raise
            await meanwhile(exc)
