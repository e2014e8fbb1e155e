"""Every topic name, in one place. A namespace prefix isolates test, benchmark and shadow runs.

Who may write and read each topic is the table beside this module (shared/contracts/principals.py).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Topics"]


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names under an optional namespace (`""` in production: `credit.applications`)."""

    namespace: str = ""

    def _name(self, base: str) -> str:
        return f"{self.namespace}.{base}" if self.namespace else base

    @property
    def applications(self) -> str:
        return self._name("credit.applications")

    @property
    def scores(self) -> str:
        return self._name("credit.scores")

    @property
    def windows(self) -> str:
        return self._name("credit.windows")

    @property
    def notifications(self) -> str:
        return self._name("credit.notifications")

    @property
    def policy(self) -> str:
        return self._name("credit.policy")

    @property
    def deadletter(self) -> str:
        return self._name("credit.deadletter")

    @property
    def drawdowns(self) -> str:
        return self._name("credit.drawdowns")

    @property
    def reviews(self) -> str:
        return self._name("credit.reviews")

    @property
    def shadow_windows(self) -> str:
        return self._name("credit.windows.shadow")

    @property
    def topic_prefix(self) -> str:
        """What every fleet topic's name starts with (`credit.`, or `<namespace>.credit.`)."""
        return self._name("credit.")

    @property
    def group_prefix(self) -> str:
        """What every fleet consumer group's name starts with (`creditwindow.`)."""
        return self.group("")

    def all(self) -> tuple[str, ...]:
        return (
            self.applications,
            self.scores,
            self.windows,
            self.notifications,
            self.policy,
            self.deadletter,
            self.drawdowns,
            self.shadow_windows,
            self.reviews,
        )

    def group(self, service: str) -> str:
        """Consumer group of a service: one group per service, replicas share it."""
        return self._name(f"creditwindow.{service}")
