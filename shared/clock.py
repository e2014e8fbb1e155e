"""The one clock: every runtime module takes the time from a `Clock` its composition root injects.

Nothing in `shared/`, `services/` or `creditwindow/` reads the wall clock itself (`datetime.now`,
`time.time`, `date.today`); `tests/unit/test_clock_calls.py` fails on any such call outside this
module. The composition roots (each service's `create_app`, the operators' commands) build a
`SystemClock`; tests build a `ManualClock` and own their time. Monotonic timers for durations and
timeouts (`time.monotonic`, `time.perf_counter`, the event loop's time) are not clocks in this
sense and stay where they are.

- `SystemClock`: UTC from the operating system.
- `ShiftedClock`: the system clock moved by a fixed offset: a fleet run at another date on the real
  broker (`CW_CLOCK_OFFSET_S`, local and test environments only).
- `ManualClock`: a clock that moves only when told (`set`, `advance`): the tests' clock, and any
  replay that decides recorded events at their own times.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "ShiftedClock", "SystemClock", "system_now"]


@runtime_checkable
class Clock(Protocol):
    """Where the time comes from."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The operating system's time, in UTC."""

    __slots__ = ()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class ShiftedClock:
    """The system clock moved by `offset`: runs at real speed from another date."""

    __slots__ = ("offset",)

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    @classmethod
    def starting_at(cls, start: datetime, base: Clock | None = None) -> ShiftedClock:
        """A clock that reads `start` now and runs on from there."""
        if start.utcoffset() is None:
            raise ValueError("a clock's start needs a time zone, e.g. 2026-12-31T15:59:50Z")
        return cls(start - (base or SystemClock()).now())

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def __repr__(self) -> str:
        return f"ShiftedClock({self.offset!r})"


class ManualClock:
    """A clock that stands still until moved: `set(instant)` or `advance(delta)`."""

    __slots__ = ("_now",)

    def __init__(self, start: datetime) -> None:
        self._now = _utc(start)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = _utc(instant)

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        """Move forward by `delta` (or `timedelta(**parts)`); returns the new time."""
        self._now += delta if delta is not None else timedelta(**parts)
        return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()})"


def system_now() -> datetime:
    """The operating system's time in UTC: only for defaults outside the fleet's code paths (an event
    an upstream tool builds without `occurred_at`)."""
    return datetime.now(UTC)


def _utc(instant: datetime) -> datetime:
    if instant.utcoffset() is None:
        raise ValueError("a clock's time needs a time zone")
    return instant.astimezone(UTC)
