"""The tests' time: one instant every unit and handler test starts from, and the clock they give the
services they build. Nothing in a test reads the wall clock for what it expects.

`NOW` is 2026-11-28 12:00 UTC unless `CW_TEST_NOW` names another instant (ISO 8601 with a zone),
so the whole suite can be run from a month's last second, a leap day or a year's end. The process
clock is independent of it: `.ci/run` runs the suites under `faketime` too, which moves the wall
and leaves `NOW` where it is, so a test that reads the wall where it should read `NOW` fails.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from shared.clock import ManualClock, SystemClock

__all__ = ["NOW", "WALL", "RunningClock", "clock_at"]


def _now() -> datetime:
    given = os.environ.get("CW_TEST_NOW", "").strip()
    if not given:
        return datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    moment = datetime.fromisoformat(given.replace("Z", "+00:00"))
    if moment.utcoffset() is None:
        raise ValueError(f"CW_TEST_NOW={given!r} needs a time zone, e.g. 2026-12-31T15:59:58Z")
    return moment.astimezone(UTC).replace(microsecond=0)


NOW = _now()


def clock_at(moment: datetime = NOW) -> ManualClock:
    """A clock standing at `moment` (the tests' NOW by default), moved only by the test."""
    return ManualClock(moment)


class RunningClock:
    """A clock that starts at `start` (NOW) and runs at the pace of the monotonic timer: for a test
    whose background loop waits short real times (a dispatcher's backoff), without reading the wall."""

    def __init__(self, start: datetime = NOW) -> None:
        self._start = start
        self._began = time.monotonic()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._began)


# End-to-end tests run the fleet on the system clock: what they publish is stamped with it too, and
# every expectation about time is computed from it (or from the events the fleet published).
WALL = SystemClock()
