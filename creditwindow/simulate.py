"""`creditwindow simulate --policy FILE`: the recorded scores through a candidate policy, no side effects.

The scores on `credit.scores` are replayed in the order they happened through the policy's own
rules (`rules.evaluate`) and budget rule (`budget.grant`), once with the active policy and once
with the candidate, each on an empty book: budgets fill as windows open, a customer's new decision
releases their previous window, windows expire at their `valid_until`. Nothing is published and
Redis is not touched. The replay and the comparison are pure functions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from creditwindow.policy_cli import read_candidate
from creditwindow.policy_ops import active_policy
from creditwindow.terminal import JsonOption, console, err, reach
from creditwindow.topics_io import read_to_end
from services.policy.budget import BudgetState, grant
from services.policy.document import PolicyDocument
from services.policy.rules import Close, Offer, evaluate
from shared.contracts import Decision, ScoreComputed, WindowOpened
from shared.settings import Settings

__all__ = ["Change", "Outcome", "SegmentSummary", "changes", "outcome_of", "replay_scores", "summarise"]



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


@dataclass(slots=True)
class _Window:
    segment: str
    limit: int
    expected_loss: float
    programme_part: int
    valid_until_s: float


@dataclass(slots=True)
class _Book:
    """The replay's portfolio: reservations per segment and programme, and each customer's open window."""

    budgets: dict[str, BudgetState] = field(default_factory=dict)
    programmes: dict[str, int] = field(default_factory=dict)
    windows: dict[str, _Window] = field(default_factory=dict)

    def state(self, segment: str, programme: str | None) -> BudgetState:
        reserved = self.budgets.get(segment, BudgetState())
        return BudgetState(reserved.reserved_exposure, reserved.reserved_el, self.programmes.get(programme or "", 0))

    def reserve(self, customer: str, window: _Window, programme: str | None) -> None:
        reserved = self.budgets.get(window.segment, BudgetState())
        self.budgets[window.segment] = BudgetState(reserved.reserved_exposure + window.limit, reserved.reserved_el + window.expected_loss)
        if programme and window.programme_part:
            self.programmes[programme] = self.programmes.get(programme, 0) + window.programme_part
        self.windows[customer] = window

    def release(self, customer: str, policy: PolicyDocument) -> None:
        window = self.windows.pop(customer, None)
        if window is not None:
            self.unreserve(window, policy)

    def unreserve(self, window: _Window, policy: PolicyDocument) -> None:
        reserved = self.budgets[window.segment]
        self.budgets[window.segment] = BudgetState(reserved.reserved_exposure - window.limit, reserved.reserved_el - window.expected_loss)
        programme = policy.programme_for(window.segment)
        if programme and window.programme_part:
            self.programmes[programme.name] = self.programmes.get(programme.name, 0) - window.programme_part

    def expire(self, now_s: float, policy: PolicyDocument) -> None:
        for customer in [c for c, w in self.windows.items() if w.valid_until_s <= now_s]:
            self.release(customer, policy)


def replay_scores(scores: Iterable[ScoreComputed], policy: PolicyDocument, *, on_each: Callable[[], None] | None = None) -> list[Outcome]:
    """Decide every application once (first score of each), in the order scored, on an empty book."""
    book = _Book()
    outcomes: list[Outcome] = []
    seen: set[str] = set()
    for score in sorted(scores, key=lambda s: s.occurred_at):
        if score.application_id in seen:
            continue  # a redelivered score is the same application
        seen.add(score.application_id)
        now = score.occurred_at
        book.expire(now.timestamp(), policy)
        segment = score.facts.segment if score.facts else "unknown"
        verdict = evaluate(score, policy, now)
        if isinstance(verdict, Offer):
            programme = policy.programme_for(segment)
            granted = grant(verdict, book.state(segment, programme.name if programme else None), policy, segment)
            if granted.limit > 0:
                window = _Window(segment, granted.limit, round(granted.limit * verdict.el_rate, 2), granted.programme_part, verdict.valid_until.timestamp())
                # As the limit store does: the new window is reserved while the previous one still counts, then that one is released.
                previous = book.windows.pop(score.customer_id, None)
                book.reserve(score.customer_id, window, programme.name if programme else None)
                if previous is not None:
                    book.unreserve(previous, policy)
                outcomes.append(Outcome(score.application_id, score.customer_id, segment, True, granted.limit, window.expected_loss, None, granted.bound_by))
            else:
                book.release(score.customer_id, policy)
                outcomes.append(Outcome(score.application_id, score.customer_id, segment, False, 0, 0.0, "strategy", granted.refusal or "budget_exhausted"))
        else:
            assert isinstance(verdict, Close)
            if verdict.category != "system":  # a system closure leaves the customer's window as it was
                book.release(score.customer_id, policy)
            outcomes.append(Outcome(score.application_id, score.customer_id, segment, False, 0, 0.0, verdict.category, verdict.reason))
        if on_each is not None:
            on_each()
    return outcomes


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


def _pct(value: float) -> str:
    return f"{value:.1%}"


def simulate(
    policy: Annotated[Path, typer.Option("--policy", "-p", help="The candidate policy (YAML).")],
    show: Annotated[int, typer.Option(help="How many changed customers to list (all with --json).", min=0)] = 20,
    as_json: JsonOption = False,
) -> None:
    """Replay the recorded scores through a candidate policy and compare with the active one, by segment.

    Prints approval rate, total limit and expected loss before (active policy) and after (candidate), and the customers whose decision would change. Publishes nothing and writes nothing to Redis.
    """
    settings = Settings()
    _, candidate = read_candidate(policy)
    columns = (TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=as_json) as progress:
        reading = progress.add_task("reading credit.scores", total=None)

        def advance(batch: list, total: int) -> None:  # type: ignore[type-arg]
            progress.update(reading, total=total, advance=len(batch))

        async def read() -> tuple[PolicyDocument, str, list[ScoreComputed]]:
            active, source = await active_policy(settings)
            records = await read_to_end(settings, [settings.topics.scores], on_batch=advance)
            return active, source, [r.event for r in records if isinstance(r.event, ScoreComputed)]

        active, source, scores = reach(read, settings)
        progress.update(reading, total=max(1, progress.tasks[reading].completed), completed=max(1, progress.tasks[reading].completed))
        applications = len({s.application_id for s in scores})
        deciding = progress.add_task(f"deciding under {active.label}", total=applications)
        before = replay_scores(scores, active, on_each=lambda: progress.advance(deciding))
        trying = progress.add_task(f"deciding under {candidate.label}", total=applications)
        after = replay_scores(scores, candidate, on_each=lambda: progress.advance(trying))
    was, now, changed = summarise(before), summarise(after), changes(before, after)
    if as_json:
        body = {
            "active": active.label,
            "active_source": source,
            "candidate": candidate.label,
            "applications": applications,
            "segments": {
                segment: {
                    "before": {**asdict(was.get(segment, SegmentSummary(0, 0, 0, 0.0))), "approval_rate": was.get(segment, SegmentSummary(0, 0, 0, 0.0)).approval_rate},
                    "after": {**asdict(now.get(segment, SegmentSummary(0, 0, 0, 0.0))), "approval_rate": now.get(segment, SegmentSummary(0, 0, 0, 0.0)).approval_rate},
                }
                for segment in sorted(set(was) | set(now))
            },
            "changed": [asdict(c) for c in changed],
        }
        print(json.dumps(body, ensure_ascii=False))
        return
    table = Table(
        "segment", "applications", "approval rate", "total limit", "expected loss",
        title=f"{applications} recorded applications: before {active.label} ({source}) -> after {candidate.label}",
    )  # fmt: skip
    empty = SegmentSummary(0, 0, 0, 0.0)
    for segment in sorted(set(was) | set(now), key=lambda s: (s == "all", s)):
        b, a = was.get(segment, empty), now.get(segment, empty)
        table.add_row(
            segment, f"{b.applications:,}", f"{_pct(b.approval_rate)} -> {_pct(a.approval_rate)}",
            f"{b.total_limit:,} -> {a.total_limit:,}", f"{b.expected_loss:,.0f} -> {a.expected_loss:,.0f}",
        )  # fmt: skip
    console.print(table)
    console.print(f"{len(changed)} application(s) would be decided differently", highlight=False)
    if changed and show:
        listing = Table("customer", "segment", "before", "after", "limit change", title=f"the {min(show, len(changed))} largest changes")
        for change in changed[:show]:
            listing.add_row(change.customer_id, change.segment, change.before, change.after, f"{change.limit_delta:+,}")
        console.print(listing)
