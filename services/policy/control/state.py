"""Which policy this replica applies now, where it came from, and every version it applied. Plain state."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.policy.control.document import PolicyDocument

__all__ = ["PolicyState"]


@dataclass(slots=True)
class PolicyState:
    """The active policy of this replica, where it came from, and every version it applied (by label:
    a decision is explained and verified with the version that made it)."""

    active: PolicyDocument
    source: str
    history_end: dict[int, int] = field(default_factory=dict)
    versions: dict[str, PolicyDocument] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.versions.setdefault(self.active.label, self.active)

    def adopt(self, document: PolicyDocument, source: str) -> None:
        self.active, self.source = document, source
        self.versions[document.label] = document
