"""The pacing experiment's market and replay: the applications, the rules' verdicts, one arrival order
through the portfolio book. Pure.

- **Budget**: for a budget share *s*, each segment's exposure budget is *s* x the sum of the limits
  all its approvable applicants would be offered, and its expected-loss budget *s* x the sum of
  their expected losses. Everything else (cut-offs, prices, caps, programme budget) is the policy's.
- **Ledger**: the replay books each application in the portfolio book (`services.policy.book`), the
  ledger the fleet keeps in Redis, so every grant sees the state the service would see.
- **Orders**: shuffle *k* of seed *n* is ``random.Random(f"creditwindow-pacing:{purpose}:{n}:{k}")``;
  the reported runs use purpose ``test``, the parameter grid search purpose ``tune``, so tuning
  never sees a reported order.
- **Metrics** per run: expected profit (sum of limit x margin, CNY a year), expected loss (sum of
  limit x PD x LGD), goods and bads approved (the observed label), realised loss (bads' limits x
  LGD, as if every line were drawn in full), and the share of the exposure and expected-loss
  budgets used.

Pure: functions take cases, a policy and seeds, and return numbers.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from devtools.germancredit import applications, load_rows
from services.policy.book import Book
from services.policy.decisions import budget_terms, propose, request_for
from services.policy.document import Budget, Pacing, PolicyDocument
from services.policy.ports import DecideRequest, Reserved
from services.policy.rules import Close, Offer
from services.scoring.assessment import assess
from services.scoring.ports import Scorer
from shared.contracts import ScoreComputed

DEFAULT_SEED = 2026
DEFAULT_SHUFFLES = 50
DEFAULT_SHARES = (0.25, 0.5, 0.75)
# A budget as large as everything approvable: nothing to save, so it shows what pacing costs.
CONTROL_SHARE = 1.0
# Margins of the approvable German Credit applicants run from about 0.008 to 0.049 a year, so the
# grid spans required margins at a full budget from "most pass" to "almost none pass".
DEFAULT_GRID: tuple[tuple[float, float], ...] = tuple(
    (m, k)
    for m in (0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05)
    for k in (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0)
)
# `evaluate` only reads the clock for maintenance windows and validity; any fixed instant will do.
NOW = datetime(2026, 1, 1, tzinfo=UTC)

RULES = ("fcfs", "pacing", "tuned", "balanced")
RULE_LABELS = {
    "fcfs": "first come, first served",
    "pacing": "pacing (policy)",
    "tuned": "pacing (tuned)",
    "balanced": "pacing (balanced)",
    "hindsight": "hindsight (best margin first)",
}
METRICS = (
    "expected_profit",
    "expected_loss",
    "approved_goods",
    "approved_bads",
    "realised_loss",
    "exposure_used",
    "el_used",
)

Purpose = Literal["test", "tune"]
StepCallback = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Case:
    """One German Credit application, scored once, with its observed label."""

    row: int
    score: ScoreComputed
    good: bool

    @property
    def segment(self) -> str:
        return self.score.facts.segment if self.score.facts else "individual"


def score_cases(scorer: Scorer, *, run_id: str = "pacing") -> tuple[Case, ...]:
    """All 1,000 rows as the scoring service would score them, in file order."""
    return tuple(
        Case(row=row.index, score=assess(application, scorer), good=row.good)
        for row, application in zip(load_rows(), applications(run_id), strict=True)
    )


@dataclass(frozen=True, slots=True)
class Market:
    """The applications, the rules' verdict on each and its request to the book under one policy:
    evaluated once, replayed in any order."""

    cases: tuple[Case, ...]
    policy: PolicyDocument
    verdicts: tuple[Offer | Close, ...]
    requests: tuple[DecideRequest | None, ...]


# The rules' verdicts do not depend on the budgets or on pacing, which are all the experiment varies:
# they are evaluated once per rule set and reused, with each policy's budget terms put in.
_VERDICTS: dict[tuple[int, str, datetime], tuple[tuple[Case, ...], tuple[DecideRequest | None, ...], tuple[Offer | Close, ...]]] = {}


def market(cases: Sequence[Case], policy: PolicyDocument, now: datetime = NOW) -> Market:
    cases = tuple(cases)
    rules = policy.model_copy(update={"budgets": {}, "pacing": Pacing()}).model_dump_json()
    key = (id(cases), rules, now)
    cached = _VERDICTS.get(key)
    if cached is None or cached[0] is not cases:
        proposals = [propose(case.score, policy, now) for case in cases]
        requests = tuple(request_for(p, policy) if isinstance(p.verdict, Offer) else None for p in proposals)
        cached = _VERDICTS[key] = (cases, requests, tuple(p.verdict for p in proposals))
    terms = {segment: budget_terms(policy, segment) for segment in policy.budgets}
    requests = tuple(replace(r, budget=terms[r.segment]) if r is not None else None for r in cached[1])
    return Market(cases, policy, cached[2], requests)


def demand(cases: Sequence[Case], policy: PolicyDocument, now: datetime = NOW) -> dict[str, tuple[int, float]]:
    """Per segment: the exposure and expected loss if every approvable applicant got the whole offer."""
    totals: dict[str, tuple[int, float]] = {segment: (0, 0.0) for segment in policy.budgets}
    for case, verdict in zip(cases, market(cases, policy, now).verdicts, strict=True):
        if isinstance(verdict, Offer):
            exposure, loss = totals[case.segment]
            totals[case.segment] = (exposure + verdict.limit, loss + verdict.limit * verdict.el_rate)
    return totals


def with_budget_share(
    policy: PolicyDocument, cases: Sequence[Case], share: float, now: datetime = NOW
) -> PolicyDocument:
    """The policy with each segment's budgets at `share` of what its approvable applicants would take."""
    if not 0 < share <= 1:
        raise ValueError(f"budget share must be in (0, 1], got {share}")
    budgets = {
        segment: Budget(exposure=math.floor(share * exposure), expected_loss=math.floor(share * loss))
        for segment, (exposure, loss) in demand(cases, policy, now).items()
    }
    return policy.model_copy(update={"budgets": budgets})


def with_pacing(policy: PolicyDocument, pacing: Pacing) -> PolicyDocument:
    return policy.model_copy(update={"pacing": pacing})


def arrival_order(n: int, seed: int, shuffle: int, purpose: Purpose = "test") -> tuple[int, ...]:
    """A seeded permutation of range(n); the same (seed, shuffle, purpose) always gives the same order."""
    order = list(range(n))
    random.Random(f"creditwindow-pacing:{purpose}:{seed}:{shuffle}").shuffle(order)
    return tuple(order)


def hindsight_order(target: Market) -> tuple[int, ...]:
    """Best margin first: what a rule that saw every application in advance would do. Not achievable online."""

    def key(i: int) -> tuple[float, int]:
        verdict = target.verdicts[i]
        return (-verdict.margin if isinstance(verdict, Offer) else math.inf, i)

    return tuple(sorted(range(len(target.cases)), key=key))


@dataclass(frozen=True, slots=True)
class Granted:
    """One window the budget let open."""

    position: int  # place in the arrival order
    row: int
    segment: str
    limit: int
    margin: float
    el_rate: float
    good: bool


@dataclass(frozen=True, slots=True)
class Run:
    """One replay of one arrival order under one policy."""

    order: tuple[int, ...]
    grants: tuple[Granted, ...]
    offers: int  # applications the rules would open a window for, before the budget
    paced: int  # refused as budget_paced
    exhausted: int  # refused as budget_exhausted
    ledger: Mapping[str, Reserved]  # what the book holds at the end, per segment
    programmes: Mapping[str, int]  # and per programme (boosted parts)
    budgets: Mapping[str, Budget]
    lgd: float

    @property
    def expected_profit(self) -> float:
        return sum(g.limit * g.margin for g in self.grants)

    @property
    def expected_loss(self) -> float:
        return sum(g.limit * g.el_rate for g in self.grants)

    @property
    def approved_goods(self) -> int:
        return sum(1 for g in self.grants if g.good)

    @property
    def approved_bads(self) -> int:
        return sum(1 for g in self.grants if not g.good)

    @property
    def realised_loss(self) -> float:
        return sum(g.limit * self.lgd for g in self.grants if not g.good)

    @property
    def exposure(self) -> int:
        return sum(reserved.exposure for reserved in self.ledger.values())

    @property
    def exposure_used(self) -> float:
        return self.exposure / (sum(b.exposure for b in self.budgets.values()) or 1)

    @property
    def el_used(self) -> float:
        reserved = sum(r.el_fen for r in self.ledger.values()) / 100
        return reserved / (sum(b.expected_loss for b in self.budgets.values()) or 1)

    def metric(self, name: str) -> float:
        return float(getattr(self, name))


def replay(target: Market, order: Sequence[int]) -> Run:
    """Decide the applications in `order` as the policy service does: the rules' verdict, then the book."""
    book = Book()
    grants: list[Granted] = []
    offers = paced = exhausted = 0
    for position, index in enumerate(order):
        request = target.requests[index]
        if request is None or request.offer is None:
            continue  # closed by the rules whatever the budget (and each row is its own customer)
        offers += 1
        answer = book.decide(request)
        if answer.granted == 0:
            paced += answer.refusal == "budget_paced"
            exhausted += answer.refusal == "budget_exhausted"
            continue
        case = target.cases[index]
        verdict = target.verdicts[index]
        assert isinstance(verdict, Offer)
        grants.append(Granted(position, case.row, case.segment, answer.granted, verdict.margin, verdict.el_rate, case.good))
    return Run(
        order=tuple(order),
        grants=tuple(grants),
        offers=offers,
        paced=paced,
        exhausted=exhausted,
        ledger={segment: book.state.budgets.get(segment, Reserved()) for segment in target.policy.budgets},
        programmes=dict(book.state.programmes),
        budgets={str(segment): budget for segment, budget in target.policy.budgets.items()},
        lgd=target.policy.pricing.lgd,
    )

