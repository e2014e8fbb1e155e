"""The pacing experiment's market, forecasts and replay: the applications, the rules' verdicts, one
arrival order through the portfolio book. Pure.

- **Budget**: for a budget share *s*, each segment's exposure budget is *s* x the sum of the limits
  all its approvable applicants would be offered, and its expected-loss budget *s* x the sum of
  their expected losses (the policy's budget period is kept). Everything else (cut-offs, prices,
  caps, programme budget) is the policy's.
- **Forecast**: pacing reads the period's expected demand (`document.Pacing.demand`), forecast from
  an *earlier period*. German Credit has one period of 1,000 applicants, so the earlier period of
  shuffle *k* is a bootstrap resample of the 1,000 rows (drawn with replacement by
  ``random.Random(f"creditwindow-pacing:forecast:{n}:{k}")``; ``forecast-tune`` for the tuning
  orders): the same population, another draw of it, with its own noise. Its offers (the rules'
  verdicts) give the demand curve (`services.policy.windows.forecast.demand_curve`). The forecast never
  sees the order being replayed: it is made from the seed and the shuffle number alone.
- **Elapsed**: the share of the period gone by is counted in arrivals: the application at place
  *i* of *N* is decided with ``elapsed = i / N`` (`decisions.budget_terms(..., elapsed=...)`).
- **Ledger**: the replay books each application in the portfolio book (`services.policy.windows.book`), the
  ledger the fleet keeps in Redis, so every grant sees the state the service would see.
- **Orders**: shuffle *k* of seed *n* is ``random.Random(f"creditwindow-pacing:{purpose}:{n}:{k}")``;
  the reported runs use purpose ``test``, the slack search purpose ``tune``, so tuning never sees a
  reported order.
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
from services.policy.control.document import Budget, DemandPoint, Pacing, PolicyDocument
from services.policy.windows.book import Book
from services.policy.windows.decisions import budget_terms, propose, request_for
from services.policy.windows.forecast import demand_by_segment
from services.policy.windows.model import Reserved, WindowRequest
from services.policy.windows.rules import Close, Offer
from services.scoring.assessment import assess
from services.scoring.ports import Scorer
from shared.contracts import ScoreComputed

DEFAULT_SEED = 2026
DEFAULT_SHUFFLES = 50
# Tight budgets, and one as large as everything approvable (1: nothing to save, so it shows what
# pacing costs when the budget cannot bind).
DEFAULT_SHARES = (0.25, 0.5, 0.75, 1.0)
# The slack values tuning tries (on the `tune` orders); the policy's own is added when missing.
DEFAULT_SLACKS = (-0.2, -0.1, 0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0)
# Points of each forecast demand curve (quantiles of the offered margins).
DEFAULT_POINTS = 24
# The targets: expected profit at least this much above FCFS at a tight budget (share < 1),
# and no more than this much below it where the budget equals the demand (share 1).
TIGHT_TARGET = 0.10
FULL_TOLERANCE = 0.01
# `evaluate` only reads the clock for maintenance windows, validity and the budget period's label;
# any fixed instant will do (the share of the period gone by is counted in arrivals).
NOW = datetime(2026, 1, 1, tzinfo=UTC)

RULES = ("fcfs", "pacing", "tuned")
RULE_LABELS = {
    "fcfs": "first come, first served",
    "pacing": "pacing (policy slack)",
    "tuned": "pacing (tuned slack)",
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
Forecast = Mapping[str, tuple[DemandPoint, ...]]


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
        Case(row=row.index, score=assess(application, scorer, NOW), good=row.good)
        for row, application in zip(load_rows(), applications(run_id), strict=True)
    )


@dataclass(frozen=True, slots=True)
class Market:
    """The applications, the rules' verdict on each and its request to the book under one policy's
    rules: evaluated once, replayed in any order under any budget amounts and pacing (the requests
    name the budget of the policy's period at `NOW`)."""

    cases: tuple[Case, ...]
    policy: PolicyDocument
    verdicts: tuple[Offer | Close, ...]
    requests: tuple[WindowRequest | None, ...]

    def offers(self, rows: Sequence[int] | None = None) -> list[tuple[str, float, int, float]]:
        """(segment, margin, limit, expected loss) of each offer among `rows` (default: all, once each)."""
        found = []
        for i in range(len(self.cases)) if rows is None else rows:
            verdict = self.verdicts[i]
            if isinstance(verdict, Offer):
                found.append((self.cases[i].segment, verdict.margin, verdict.limit, verdict.limit * verdict.el_rate))
        return found


# The rules' verdicts do not depend on the budgets or on pacing, which are all the experiment varies.
_MARKETS: dict[tuple[int, str, datetime], Market] = {}


def market(cases: Sequence[Case], policy: PolicyDocument, now: datetime = NOW) -> Market:
    """The verdicts and book requests of `cases` under the policy's rules (cached per rules and cases)."""
    cases = tuple(cases)
    periods = {segment: Budget(exposure=0, expected_loss=0, period=b.period) for segment, b in policy.budgets.items()}
    rules = policy.model_copy(update={"pacing": Pacing(), "budgets": periods}).model_dump_json()
    key = (id(cases), rules, now)
    cached = _MARKETS.get(key)
    if cached is None or cached.cases is not cases:
        proposals = [propose(case.score, policy, now) for case in cases]
        requests = tuple(request_for(p, policy) if isinstance(p.verdict, Offer) else None for p in proposals)
        cached = _MARKETS[key] = Market(cases, policy, tuple(p.verdict for p in proposals), requests)
    return cached


def demand(cases: Sequence[Case], policy: PolicyDocument, now: datetime = NOW) -> dict[str, tuple[int, float]]:
    """Per segment: the exposure and expected loss if every approvable applicant got the whole offer."""
    totals: dict[str, tuple[int, float]] = {segment: (0, 0.0) for segment in policy.budgets}
    for segment, _, limit, loss in market(cases, policy, now).offers():
        exposure, so_far = totals[segment]
        totals[segment] = (exposure + limit, so_far + loss)
    return totals


def with_budget_share(
    policy: PolicyDocument, cases: Sequence[Case], share: float, now: datetime = NOW
) -> PolicyDocument:
    """The policy with each segment's budgets at `share` of what its approvable applicants would take."""
    if not 0 < share <= 1:
        raise ValueError(f"budget share must be in (0, 1], got {share}")
    budgets = {
        segment: Budget(
            exposure=math.floor(share * exposure),
            expected_loss=math.floor(share * loss),
            period=policy.budgets[segment].period,  # type: ignore[index]
        )
        for segment, (exposure, loss) in demand(cases, policy, now).items()
    }
    return policy.model_copy(update={"budgets": budgets})


def with_pacing(policy: PolicyDocument, pacing: Pacing) -> PolicyDocument:
    return policy.model_copy(update={"pacing": pacing})


def fcfs(policy: PolicyDocument) -> PolicyDocument:
    """First come, first served: the policy with pacing off."""
    return with_pacing(policy, Pacing(enabled=False))


def paced(policy: PolicyDocument, slack: float, forecast: Forecast) -> PolicyDocument:
    """The policy pacing with `slack` against `forecast`."""
    return with_pacing(policy, Pacing(enabled=True, slack=slack, demand=dict(forecast)))  # type: ignore[arg-type]


def _permutation(n: int, seed: str) -> tuple[int, ...]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return tuple(order)


def arrival_order(n: int, seed: int, shuffle: int, purpose: Purpose = "test") -> tuple[int, ...]:
    """A seeded permutation of range(n); the same (seed, shuffle, purpose) always gives the same order."""
    return _permutation(n, f"creditwindow-pacing:{purpose}:{seed}:{shuffle}")


def forecast_sample(n: int, seed: int, shuffle: int, purpose: Purpose = "test") -> tuple[int, ...]:
    """The earlier period of a shuffle: n rows drawn with replacement, from the seed and shuffle number
    alone (never from an arrival order)."""
    rng = random.Random(f"creditwindow-pacing:{'forecast' if purpose == 'test' else 'forecast-tune'}:{seed}:{shuffle}")
    return tuple(rng.randrange(n) for _ in range(n))


def forecast(target: Market, sample: Sequence[int], points: int = DEFAULT_POINTS) -> dict[str, tuple[DemandPoint, ...]]:
    """The demand curves of the sample's offers, scaled to a period of `len(target.cases)` arrivals."""
    scale = len(target.cases) / len(sample) if sample else 1.0
    return demand_by_segment(target.offers(sample), points=points, scale=scale)


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

    @property
    def most_used(self) -> float:
        """The largest share of any one budget (a segment's exposure or expected loss) the run took."""
        shares = [0.0]
        for segment, reserved in self.ledger.items():
            budget = self.budgets[segment]
            shares.append(reserved.exposure / budget.exposure if budget.exposure else float(reserved.exposure > 0))
            loss = reserved.el_fen / 100
            shares.append(loss / budget.expected_loss if budget.expected_loss else float(loss > 0))
        return max(shares)

    def metric(self, name: str) -> float:
        return float(getattr(self, name))


def replay(target: Market, policy: PolicyDocument, order: Sequence[int], now: datetime = NOW) -> Run:
    """Decide the applications in `order` as the policy service does: the rules' verdict (from `target`),
    then the book under `policy`'s budgets and pacing, the share of the period gone by counted in arrivals."""
    book = Book()
    grants: list[Granted] = []
    offers = paced_count = exhausted = 0
    arrivals = len(order)
    # `budget_terms(policy, segment, now, elapsed=e)` for each arrival: the terms depend on the arrival
    # only through `elapsed`, so they are made once per segment and `elapsed` is put in.
    terms = {str(segment): budget_terms(policy, segment, now, elapsed=0.0) for segment in policy.budgets}
    for position, index in enumerate(order):
        request = target.requests[index]
        if request is None or request.offer is None:
            continue  # closed by the rules whatever the budget (and each row is its own customer)
        offers += 1
        key, base = terms[request.segment]
        if key != request.budget:
            raise ValueError(f"the request names budget {request.budget!r}, the policy's terms are for {key!r}")
        answer = book.post(request, replace(base, elapsed=position / arrivals))
        if answer.granted == 0:
            paced_count += answer.refusal == "budget_paced"
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
        paced=paced_count,
        exhausted=exhausted,
        ledger={segment: book.state.budgets.get(key, Reserved()) for segment, (key, _) in terms.items()},
        programmes=dict(book.state.programmes),
        budgets={str(segment): budget for segment, budget in policy.budgets.items()},
        lgd=policy.pricing.lgd,
    )
