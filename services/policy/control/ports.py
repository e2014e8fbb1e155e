"""What the control plane needs from outside: retrying a step, and closing the windows a new pause covers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from shared.contracts import WindowClosed

__all__ = ["PauseEnforcer", "Retry"]

T = TypeVar("T")


class Retry(Protocol):
    """Run a step, transient faults (Redis or the broker away) retried with the service's backoff."""

    async def __call__(self, operation: Callable[[], Awaitable[T]], *, what: str) -> T: ...


class PauseEnforcer(Protocol):
    """Closes the open windows every pause in force now covers (`windows.underwriting.Underwriter`)."""

    async def enforce_pauses(self) -> list[WindowClosed]: ...
