"""What a policy decided, application by application, and how two sets of decisions compare. Pure.

`creditwindow simulate` compares a replay under the active policy with one under a candidate;
`creditwindow shadow report` compares a shadow replica's decisions with the live ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shared.contracts import Decision, WindowOpened

__all__ = [
    "Change",
    "Outcome",
    "SegmentSummary",
    "ShadowReport",
    "changes",
    "compare",
    "first_decisions",
    "outcome_of",
    "summarise",
]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a policy decides for one application in the replay."""

    application_id: str
    customer_id: str
    segment: str
    opened: bool
    limit: int
    expected_loss: float
    category: str | None  # None when opened
    reason: str  # the closing rule, or what bound the limit when opened

    @property
    def label(self) -> str:
        return f"opened {self.limit:,}" if self.opened else f"closed {self.category}/{self.reason}"


def outcome_of(decision: Decision) -> Outcome:
    """A published decision as an `Outcome`, to compare it with a replayed or a shadow one."""
    segment = decision.segment or "unknown"
    if isinstance(decision, WindowOpened):
        return Outcome(decision.application_id, decision.customer_id, segment, True, decision.limit, decision.expected_loss, None, decision.basis.bound_by)
    return Outcome(decision.application_id, decision.customer_id, segment, False, 0, 0.0, getattr(decision, "category", None), getattr(decision, "reason", ""))


@dataclass(frozen=True, slots=True)
class SegmentSummary:
    applications: int
    opened: int
    total_limit: int
    expected_loss: float

    @property
    def approval_rate(self) -> float:
        return self.opened / self.applications if self.applications else 0.0


def summarise(outcomes: Iterable[Outcome]) -> dict[str, SegmentSummary]:
    """By segment (and `all`): applications, windows opened, approval rate, total limit, expected loss."""
    totals: dict[str, list[float]] = {}
    for outcome in outcomes:
        for key in (outcome.segment, "all"):
            row = totals.setdefault(key, [0, 0, 0, 0.0])
            row[0] += 1
            row[1] += int(outcome.opened)
            row[2] += outcome.limit
            row[3] += outcome.expected_loss
    return {k: SegmentSummary(int(v[0]), int(v[1]), int(v[2]), round(v[3], 2)) for k, v in sorted(totals.items(), key=lambda kv: (kv[0] == "all", kv[0]))}


@dataclass(frozen=True, slots=True)
class Change:
    """An application whose decision differs between two policies."""

    application_id: str
    customer_id: str
    segment: str
    before: str
    after: str
    limit_delta: int


def changes(before: Sequence[Outcome], after: Sequence[Outcome]) -> list[Change]:
    """Applications decided differently (outcome, limit, or closing rule), biggest limit change first."""
    earlier = {o.application_id: o for o in before}
    found = []
    for now in after:
        was = earlier.get(now.application_id)
        if was is None:
            continue
        if (was.opened, was.limit, was.category, was.reason if not was.opened else "") != (now.opened, now.limit, now.category, now.reason if not now.opened else ""):
            found.append(Change(now.application_id, now.customer_id, now.segment, was.label, now.label, now.limit - was.limit))
    return sorted(found, key=lambda c: (-abs(c.limit_delta), c.customer_id))


def first_decisions(decisions: Iterable[Decision]) -> dict[str, Outcome]:
    """Each application's decision (trigger `application`; the first copy of a redelivered one)."""
    found: dict[str, Outcome] = {}
    for decision in decisions:
        if decision.trigger == "application":
            found.setdefault(decision.application_id, outcome_of(decision))
    return found


def _agree(live: Outcome, shadow: Outcome) -> bool:
    if live.opened != shadow.opened:
        return False
    return live.limit == shadow.limit if live.opened else live.category == shadow.category


@dataclass(frozen=True, slots=True)
class ShadowReport:
    """The shadow against the live decisions of the same applications."""

    joined: int
    agreed: int
    live_only: int
    shadow_only: int
    live: dict[str, SegmentSummary]
    shadow: dict[str, SegmentSummary]
    differences: list[Change]

    @property
    def agreement_rate(self) -> float:
        return self.agreed / self.joined if self.joined else 0.0


def compare(live: Iterable[Decision], shadow: Iterable[Decision]) -> ShadowReport:
    """Join by application id; agree = same outcome and, opened, the same limit or, closed, the same category."""
    live_by_app, shadow_by_app = first_decisions(live), first_decisions(shadow)
    both = sorted(set(live_by_app) & set(shadow_by_app))
    left = [live_by_app[a] for a in both]
    right = [shadow_by_app[a] for a in both]
    return ShadowReport(
        joined=len(both),
        agreed=sum(1 for a in both if _agree(live_by_app[a], shadow_by_app[a])),
        live_only=len(set(live_by_app) - set(shadow_by_app)),
        shadow_only=len(set(shadow_by_app) - set(live_by_app)),
        live=summarise(left),
        shadow=summarise(right),
        differences=changes(left, right),
    )
