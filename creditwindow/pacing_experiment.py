"""The budget pacing experiment: first come, first served against the budget's shadow price.

Issue 4, item 5. The 1,000 German Credit applications are scored once with the real scorecard
(`assess`), then replayed in seeded shuffled orders through the policy's own rules
(`rules.evaluate`) and budget step (`budget.grant`, the rule the Redis script runs), once with
pacing off (first come, first served) and once with the policy's pacing rule, under the same
deliberately tight budget. German Credit has no arrival times, so the shuffle *is* the arrival order.
Two more pacing settings are replayed beside them, both chosen on orders the report never uses:
*tuned* (the best mean profit at the tight budgets) and *balanced* (the best among settings no
worse than the policy's, including at a control budget that cannot bind).

- **Budget**: for a budget share *s*, each segment's exposure budget is *s* x the sum of the limits
  all its approvable applicants would be offered, and its expected-loss budget *s* x the sum of
  their expected losses. Everything else (cut-offs, prices, caps, programme budget) is the policy's.
- **Ledger**: the replay books each grant as the store does (exposure in CNY, expected loss in
  whole fen), so the state `grant` sees is the state the service would see.
- **Orders**: shuffle *k* of seed *n* is ``random.Random(f"creditwindow-pacing:{purpose}:{n}:{k}")``;
  the reported runs use purpose ``test``, the parameter grid search purpose ``tune``, so tuning
  never sees a reported order.
- **Metrics** per run: expected profit (sum of limit x margin, CNY a year), expected loss (sum of
  limit x PD x LGD), goods and bads approved (the observed label), realised loss (bads' limits x
  LGD, as if every line were drawn in full), and the share of the exposure and expected-loss
  budgets used.

Pure apart from `write_plots` and `write_doc`, which the CLI calls: functions take cases, a policy
and seeds, and return numbers.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from services.policy.budget import BudgetState, grant
from services.policy.document import Budget, Pacing, PolicyDocument
from services.policy.rules import Close, Offer, evaluate
from services.scoring.assessment import Scorer, assess
from shared.contracts import ScoreComputed
from shared.germancredit import applications, load_rows

__all__ = [
    "CONTROL_SHARE",
    "DEFAULT_GRID",
    "DEFAULT_SEED",
    "DEFAULT_SHARES",
    "DEFAULT_SHUFFLES",
    "METRICS",
    "RULES",
    "RULE_LABELS",
    "Case",
    "Experiment",
    "GridPoint",
    "Level",
    "Market",
    "PairedDifference",
    "Run",
    "Spread",
    "Tuning",
    "arrival_order",
    "command_arguments",
    "demand",
    "grid_settings",
    "hindsight_order",
    "market",
    "paired",
    "pareto_frontier",
    "render_sections",
    "replay",
    "run_experiment",
    "score_cases",
    "summary",
    "with_budget_share",
    "with_pacing",
    "write_doc",
    "write_plots",
]

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
    """The applications and the rules' verdict on each under one policy: evaluated once, replayed in any order."""

    cases: tuple[Case, ...]
    policy: PolicyDocument
    verdicts: tuple[Offer | Close, ...]


def market(cases: Sequence[Case], policy: PolicyDocument, now: datetime = NOW) -> Market:
    return Market(tuple(cases), policy, tuple(evaluate(case.score, policy, now) for case in cases))


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
    ledger: Mapping[str, BudgetState]  # what the store holds at the end, per segment
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
        return sum(state.reserved_exposure for state in self.ledger.values())

    @property
    def exposure_used(self) -> float:
        return self.exposure / (sum(b.exposure for b in self.budgets.values()) or 1)

    @property
    def el_used(self) -> float:
        reserved = sum(state.reserved_el for state in self.ledger.values())
        return reserved / (sum(b.expected_loss for b in self.budgets.values()) or 1)

    def metric(self, name: str) -> float:
        return float(getattr(self, name))


def replay(target: Market, order: Sequence[int]) -> Run:
    """Decide the applications in `order` as the policy service does: the rules' verdict, then the budget."""
    policy = target.policy
    ledger: dict[str, BudgetState] = {segment: BudgetState() for segment in policy.budgets}
    # The store adds expected loss in whole fen so that sums are exact; the replay books it the same way.
    fen: dict[str, int] = {segment: 0 for segment in policy.budgets}
    grants: list[Granted] = []
    offers = paced = exhausted = 0
    for position, index in enumerate(order):
        verdict = target.verdicts[index]
        if not isinstance(verdict, Offer):
            continue
        offers += 1
        case = target.cases[index]
        segment = case.segment
        state = ledger[segment]
        result = grant(verdict, state, policy, segment)
        if result.limit == 0:
            paced += result.refusal == "budget_paced"
            exhausted += result.refusal == "budget_exhausted"
            continue
        fen[segment] += math.floor(result.limit * verdict.el_rate * 100 + 0.5)
        ledger[segment] = BudgetState(
            reserved_exposure=state.reserved_exposure + result.limit,
            reserved_el=fen[segment] / 100,
            programme_reserved=state.programme_reserved + result.programme_part,
        )
        grants.append(Granted(position, case.row, segment, result.limit, verdict.margin, verdict.el_rate, case.good))
    return Run(
        order=tuple(order),
        grants=tuple(grants),
        offers=offers,
        paced=paced,
        exhausted=exhausted,
        ledger=ledger,
        budgets={str(segment): budget for segment, budget in policy.budgets.items()},
        lgd=policy.pricing.lgd,
    )


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on sorted values."""
    if len(ordered) == 1:
        return ordered[0]
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class Spread:
    """Mean, standard deviation and the 5th-95th percentile band of a metric across shuffles."""

    mean: float
    std: float
    p5: float
    p95: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        data = sorted(values)
        if not data:
            raise ValueError("no values")
        std = statistics.stdev(data) if len(data) > 1 else 0.0
        return cls(statistics.fmean(data), std, _percentile(data, 0.05), _percentile(data, 0.95))


def _sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test p-value, ties dropped: how surprising the wins are if neither rule is better."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True, slots=True)
class PairedDifference:
    """`b - a` on the same shuffles: mean ± 2 standard errors, and how often b came out ahead."""

    mean: float
    se: float
    p5: float
    p95: float
    wins: int  # shuffles where b > a
    losses: int  # shuffles where b < a
    n: int

    @property
    def low(self) -> float:
        return self.mean - 2 * self.se

    @property
    def high(self) -> float:
        return self.mean + 2 * self.se

    @property
    def win_share(self) -> float:
        return self.wins / self.n if self.n else 0.0

    @property
    def sign_test_p(self) -> float:
        return _sign_test(self.wins, self.losses)


def paired(a: Sequence[float], b: Sequence[float]) -> PairedDifference:
    if len(a) != len(b) or not a:
        raise ValueError("paired differences need two equally long, non-empty series")
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    spread = Spread.of(diffs)
    se = spread.std / math.sqrt(len(diffs))
    return PairedDifference(
        mean=spread.mean,
        se=se,
        p5=spread.p5,
        p95=spread.p95,
        wins=sum(1 for d in diffs if d > 0),
        losses=sum(1 for d in diffs if d < 0),
        n=len(diffs),
    )


@dataclass(frozen=True, slots=True)
class GridPoint:
    """One pacing setting on the tuning orders: mean expected profit relative to FCFS, per budget share."""

    max_margin: float
    steepness: float
    uplift: Mapping[float, float]  # share -> mean pacing profit / mean FCFS profit - 1
    control_uplift: float | None = None  # the same where the budget does not bind; not part of the score

    @property
    def mean_uplift(self) -> float:
        return statistics.fmean(self.uplift.values())

    @property
    def pacing(self) -> Pacing:
        return Pacing(enabled=True, max_margin=self.max_margin, steepness=self.steepness)


@dataclass(frozen=True, slots=True)
class Tuning:
    """The grid search on orders the reported runs never use (purpose ``tune``)."""

    seed: int
    shuffles: int
    points: tuple[GridPoint, ...]
    chosen: GridPoint  # the best mean uplift at the tight budgets
    policy_point: GridPoint  # the policy's own setting, evaluated on the same orders
    # The best mean uplift among settings at least as good as the policy's both at the tight budgets
    # and where the budget cannot bind: an improvement that costs nothing the policy's setting does not.
    balanced: GridPoint


@dataclass(frozen=True, slots=True)
class Level:
    """One budget share: the budgets, every rule's runs on the same orders, and the hindsight reference."""

    share: float
    budgets: Mapping[str, Budget]
    runs: Mapping[str, tuple[Run, ...]]
    hindsight: Run

    def values(self, rule: str, metric: str) -> list[float]:
        return [run.metric(metric) for run in self.runs[rule]]

    def spread(self, rule: str, metric: str) -> Spread:
        return Spread.of(self.values(rule, metric))

    def difference(self, rule: str, metric: str, baseline: str = "fcfs") -> PairedDifference:
        return paired(self.values(baseline, metric), self.values(rule, metric))


@dataclass(frozen=True, slots=True)
class Experiment:
    seed: int
    shuffles: int
    shares: tuple[float, ...]
    policy_label: str
    model_id: str
    pacing: Pacing  # the policy's own
    tuning: Tuning
    levels: tuple[Level, ...]
    control: Level | None  # a budget that does not bind: what pacing costs when there is nothing to save
    applications: int
    offers: int
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tuned(self) -> Pacing:
        return self.tuning.chosen.pacing

    @property
    def balanced(self) -> Pacing:
        return self.tuning.balanced.pacing


def pareto_frontier(points: Sequence[GridPoint]) -> list[GridPoint]:
    """Points no other point matches or beats on both the tight-budget and the control uplift; best tight first."""
    scored = [p for p in points if p.control_uplift is not None]

    def beaten(p: GridPoint) -> bool:
        return any(
            q.mean_uplift >= p.mean_uplift
            and q.control_uplift >= p.control_uplift  # type: ignore[operator]
            and (q.mean_uplift, q.control_uplift) != (p.mean_uplift, p.control_uplift)
            for q in scored
        )

    return sorted((p for p in scored if not beaten(p)), key=lambda p: -p.mean_uplift)


def _fcfs(policy: PolicyDocument) -> PolicyDocument:
    return with_pacing(policy, policy.pacing.model_copy(update={"enabled": False}))


def grid_settings(grid: Sequence[tuple[float, float]], policy_pacing: Pacing) -> list[tuple[float, float]]:
    """The (max_margin, steepness) pairs tuning tries: the grid, plus the policy's own setting if missing."""
    return list(dict.fromkeys([*grid, (policy_pacing.max_margin, policy_pacing.steepness)]))


def _mean_profit(
    cases: Sequence[Case], policy: PolicyDocument, orders: Sequence[Sequence[int]], now: datetime
) -> float:
    target = market(cases, policy, now)
    return statistics.fmean(replay(target, order).expected_profit for order in orders)


def _tune(
    cases: Sequence[Case],
    budgeted: Mapping[float, PolicyDocument],
    control: PolicyDocument | None,
    grid: Sequence[tuple[float, float]],
    *,
    seed: int,
    shuffles: int,
    policy_pacing: Pacing,
    now: datetime,
    on_step: StepCallback | None,
) -> Tuning:
    orders = [arrival_order(len(cases), seed, k, "tune") for k in range(shuffles)]

    def uplift(policy: PolicyDocument, pacing: Pacing, baseline: float) -> float:
        return _mean_profit(cases, with_pacing(policy, pacing), orders, now) / baseline - 1 if baseline else 0.0

    baseline = {share: _mean_profit(cases, _fcfs(policy), orders, now) for share, policy in budgeted.items()}
    control_baseline = _mean_profit(cases, _fcfs(control), orders, now) if control else 0.0
    points = []
    for max_margin, steepness in grid_settings(grid, policy_pacing):
        pacing = Pacing(max_margin=max_margin, steepness=steepness)
        points.append(
            GridPoint(
                max_margin,
                steepness,
                {share: uplift(policy, pacing, baseline[share]) for share, policy in budgeted.items()},
                uplift(control, pacing, control_baseline) if control else None,
            )
        )
        if on_step:
            on_step("tune")
    # Ties go to the gentler setting: the smaller required margin refuses fewer customers.
    chosen = max(points, key=lambda p: (round(p.mean_uplift, 9), -p.max_margin, -p.steepness))
    own = next(p for p in points if (p.max_margin, p.steepness) == (policy_pacing.max_margin, policy_pacing.steepness))
    no_worse = [
        p
        for p in points
        if p.mean_uplift >= own.mean_uplift
        and (p.control_uplift is None or own.control_uplift is None or p.control_uplift >= own.control_uplift)
    ]
    balanced = max(no_worse, key=lambda p: (round(p.mean_uplift, 9), -p.max_margin, -p.steepness))
    return Tuning(
        seed=seed, shuffles=shuffles, points=tuple(points), chosen=chosen, policy_point=own, balanced=balanced
    )


def _level(
    share: float,
    policy: PolicyDocument,
    settings: Mapping[str, Pacing],
    orders: Sequence[Sequence[int]],
    cases: Sequence[Case],
    now: datetime,
    on_step: StepCallback | None,
) -> Level:
    markets = {
        "fcfs": market(cases, _fcfs(policy), now),
        "pacing": market(cases, policy, now),
        **{rule: market(cases, with_pacing(policy, pacing), now) for rule, pacing in settings.items()},
    }
    runs: dict[str, list[Run]] = {rule: [] for rule in RULES}
    for order in orders:
        for rule in RULES:
            runs[rule].append(replay(markets[rule], order))
        if on_step:
            on_step("test")
    fcfs = markets["fcfs"]
    return Level(
        share=share,
        budgets={str(segment): budget for segment, budget in policy.budgets.items()},
        runs={rule: tuple(found) for rule, found in runs.items()},
        hindsight=replay(fcfs, hindsight_order(fcfs)),
    )


def run_experiment(
    cases: Sequence[Case],
    policy: PolicyDocument,
    *,
    model_id: str,
    shuffles: int = DEFAULT_SHUFFLES,
    seed: int = DEFAULT_SEED,
    shares: Sequence[float] = DEFAULT_SHARES,
    control_share: float | None = CONTROL_SHARE,
    tuning_shuffles: int | None = None,
    grid: Sequence[tuple[float, float]] = DEFAULT_GRID,
    now: datetime = NOW,
    on_step: StepCallback | None = None,
) -> Experiment:
    """Tune on the ``tune`` orders, then replay the ``test`` orders through FCFS, the policy's pacing and the two tuned ones.

    Every rule at every budget share sees the same orders. `on_step` is called with ``"tune"`` after
    each grid point and ``"test"`` after each reported shuffle of each budget level (the control included).
    """
    if shuffles < 1:
        raise ValueError("at least one shuffle")
    shares = tuple(sorted(set(shares)))
    tuning_shuffles = shuffles if tuning_shuffles is None else tuning_shuffles
    budgeted = {share: with_budget_share(policy, cases, share, now) for share in shares}
    control = with_budget_share(policy, cases, control_share, now) if control_share else None
    tuning = _tune(
        cases,
        budgeted,
        control,
        grid,
        seed=seed,
        shuffles=tuning_shuffles,
        policy_pacing=policy.pacing,
        now=now,
        on_step=on_step,
    )
    orders = [arrival_order(len(cases), seed, k, "test") for k in range(shuffles)]
    settings = {"tuned": tuning.chosen.pacing, "balanced": tuning.balanced.pacing}
    levels = [_level(share, p, settings, orders, cases, now, on_step) for share, p in budgeted.items()]
    control_level = None
    if control is not None and control_share is not None:
        control_level = _level(control_share, control, settings, orders, cases, now, on_step)
    fcfs = levels[0].runs["fcfs"][0]
    return Experiment(
        seed=seed,
        shuffles=shuffles,
        shares=shares,
        policy_label=policy.label,
        model_id=model_id,
        pacing=policy.pacing,
        tuning=tuning,
        levels=tuple(levels),
        control=control_level,
        applications=len(cases),
        offers=fcfs.offers,
        settings={"tuning_shuffles": tuning_shuffles, "grid_points": len(tuning.points)},
    )


def _spread_json(spread: Spread) -> dict[str, float]:
    return {"mean": spread.mean, "std": spread.std, "p5": spread.p5, "p95": spread.p95}


def _difference_json(diff: PairedDifference) -> dict[str, float]:
    return {
        "mean": diff.mean,
        "se": diff.se,
        "low": diff.low,
        "high": diff.high,
        "p5": diff.p5,
        "p95": diff.p95,
        "win_share": diff.win_share,
        "wins": diff.wins,
        "losses": diff.losses,
        "sign_test_p": diff.sign_test_p,
    }


def _pacing_json(pacing: Pacing) -> dict[str, float]:
    return {"max_margin": pacing.max_margin, "steepness": pacing.steepness}


def _level_json(level: Level) -> dict[str, Any]:
    return {
        "budget_share": level.share,
        "budgets": {s: {"exposure": b.exposure, "expected_loss": b.expected_loss} for s, b in level.budgets.items()},
        "rules": {rule: {metric: _spread_json(level.spread(rule, metric)) for metric in METRICS} for rule in RULES},
        "hindsight": {metric: level.hindsight.metric(metric) for metric in METRICS},
        "differences": {
            "pacing_minus_fcfs": {m: _difference_json(level.difference("pacing", m)) for m in METRICS},
            "tuned_minus_fcfs": {m: _difference_json(level.difference("tuned", m)) for m in METRICS},
            "tuned_minus_pacing": {m: _difference_json(level.difference("tuned", m, "pacing")) for m in METRICS},
            "balanced_minus_fcfs": {m: _difference_json(level.difference("balanced", m)) for m in METRICS},
            "balanced_minus_pacing": {m: _difference_json(level.difference("balanced", m, "pacing")) for m in METRICS},
        },
    }


def _point_json(point: GridPoint) -> dict[str, Any]:
    return {
        **_pacing_json(point.pacing),
        "mean_uplift": point.mean_uplift,
        "uplift": {f"{share:g}": value for share, value in point.uplift.items()},
        "control_uplift": point.control_uplift,
    }


def summary(experiment: Experiment) -> dict[str, Any]:
    """Everything the report states, as plain JSON values."""
    tuning = experiment.tuning
    return {
        "experiment": "budget_pacing",
        "seed": experiment.seed,
        "shuffles": experiment.shuffles,
        "budget_shares": list(experiment.shares),
        "policy": experiment.policy_label,
        "model_id": experiment.model_id,
        "applications": experiment.applications,
        "offers": experiment.offers,
        "pacing": _pacing_json(experiment.pacing),
        "tuning": {
            "seed": tuning.seed,
            "shuffles": tuning.shuffles,
            "orders": "tune",
            "grid_points": len(tuning.points),
            "chosen": _point_json(tuning.chosen),
            "policy": _point_json(tuning.policy_point),
            "balanced": _point_json(tuning.balanced),
        },
        "levels": [_level_json(level) for level in experiment.levels],
        "control": _level_json(experiment.control) if experiment.control else None,
    }


# --- The document and the plots -------------------------------------------------------------------


def _money(value: float) -> str:
    return f"{value:,.0f}"


def _metric_text(metric: str, value: float) -> str:
    if metric in ("exposure_used", "el_used"):
        return f"{value:.1%}"
    if metric in ("approved_goods", "approved_bads"):
        return f"{value:.1f}"
    return _money(value)


def _difference_text(metric: str, diff: PairedDifference) -> str:
    if metric in ("exposure_used", "el_used"):
        return f"{diff.mean * 100:+.1f} ± {2 * diff.se * 100:.1f} pp"
    if metric in ("approved_goods", "approved_bads"):
        return f"{diff.mean:+.1f} ± {2 * diff.se:.1f}"
    return f"{diff.mean:+,.0f} ± {2 * diff.se:,.0f}"


METRIC_LABELS = {
    "expected_profit": "expected profit (CNY/yr)",
    "expected_loss": "expected loss (CNY)",
    "approved_goods": "goods approved",
    "approved_bads": "bads approved",
    "realised_loss": "realised loss (CNY)",
    "exposure_used": "exposure budget used",
    "el_used": "EL budget used",
}


def command_arguments(experiment: Experiment, out: str = "docs/") -> str:
    """The options that reproduce `experiment`."""
    shares = " ".join(f"--budget-share {share:g}" for share in experiment.shares)
    tuning = experiment.settings.get("tuning_shuffles", experiment.shuffles)
    extra = "" if tuning == experiment.shuffles else f" --tuning-shuffles {tuning}"
    return f"--shuffles {experiment.shuffles} --seed {experiment.seed} {shares}{extra} --out {out}"


def _level_table(level: Level, shuffles: int, title: str) -> list[str]:
    lines = [
        f"**{title}** — mean across {shuffles} shuffles [p5 – p95]; hindsight is one run, best margin first.",
        "",
        "| metric | "
        + " | ".join(RULE_LABELS[r] for r in RULES)
        + " | hindsight | pacing − FCFS (mean ± 2 SE) | pacing ahead |",
        "|---|" + "---|" * (len(RULES) + 3),
    ]
    for metric in METRICS:
        cells = []
        for rule in RULES:
            s = level.spread(rule, metric)
            cells.append(
                f"{_metric_text(metric, s.mean)} [{_metric_text(metric, s.p5)} – {_metric_text(metric, s.p95)}]"
            )
        cells.append(_metric_text(metric, level.hindsight.metric(metric)))
        diff = level.difference("pacing", metric)
        cells += [_difference_text(metric, diff), f"{diff.wins}/{diff.n}"]
        lines.append(f"| {METRIC_LABELS[metric]} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _verdict_line(level: Level, rule: str, name: str) -> str:
    diff = level.difference(rule, "expected_profit")
    el = level.difference(rule, "expected_loss")
    goods = level.difference(rule, "approved_goods")
    bads = level.difference(rule, "approved_bads")
    realised = level.difference(rule, "realised_loss")
    direction = "more" if diff.mean > 0 else "less"
    interval = "the interval excludes zero" if diff.low > 0 or diff.high < 0 else "the interval includes zero"
    return (
        f"{name} earned {direction} expected profit than FCFS ({_difference_text('expected_profit', diff)} CNY/yr, "
        f"{interval}; ahead in {diff.wins} of {diff.n} shuffles, sign test p = {diff.sign_test_p:.2g}); "
        f"expected loss {_difference_text('expected_loss', el)} CNY; goods approved {_difference_text('approved_goods', goods)}, "
        f"bads approved {_difference_text('approved_bads', bads)}; realised loss {_difference_text('realised_loss', realised)} CNY."
    )


def render_sections(experiment: Experiment, images: Mapping[str, str]) -> dict[str, str]:
    """The generated sections of docs/pacing.md: parameters, results, tuning, verdict."""
    pacing, tuned, balanced = experiment.pacing, experiment.tuned, experiment.balanced
    every = [*experiment.levels, *([experiment.control] if experiment.control else [])]
    segments = sorted(experiment.levels[0].budgets)
    parameters = [
        (
            f"Regenerate with `creditwindow experiment pacing {command_arguments(experiment)}` "
            f"(without the mounted command: `python -m creditwindow.experiment_cli pacing {command_arguments(experiment)}`)."
        ),
        "",
        (
            f"- Policy `{experiment.policy_label}`, scorecard `{experiment.model_id}`; {experiment.applications:,} applications, "
            f"of which {experiment.offers} pass the rules (an offer before the budget); the others close whatever the budget."
        ),
        (
            f"- Reported orders: {experiment.shuffles} shuffles of seed {experiment.seed} (purpose `test`). "
            f"Tuning: {experiment.tuning.shuffles} other shuffles of the same seed (purpose `tune`)."
        ),
        (
            f"- Policy pacing: max_margin {pacing.max_margin:g}, steepness {pacing.steepness:g}. "
            f"Tuned pacing (best at the tight budgets): max_margin {tuned.max_margin:g}, steepness {tuned.steepness:g}. "
            f"Balanced pacing (best among settings no worse than the policy's at the tight budgets and at the control): "
            f"max_margin {balanced.max_margin:g}, steepness {balanced.steepness:g}."
        ),
        "",
        "Budgets per segment, exposure / expected loss (CNY):",
        "",
        "| budget share | " + " | ".join(segments) + " |",
        "|---|" + "---|" * len(segments),
    ]
    for level in every:
        note = " (control: nothing to save)" if level is experiment.control else ""
        parameters.append(
            f"| {level.share:g}{note} | "
            + " | ".join(
                f"{_money(level.budgets[s].exposure)} / {_money(level.budgets[s].expected_loss)}" for s in segments
            )
            + " |"
        )

    results: list[str] = []
    for level in experiment.levels:
        results += _level_table(level, experiment.shuffles, f"Budget share {level.share:g}")
    if experiment.control:
        results += _level_table(
            experiment.control,
            experiment.shuffles,
            f"Control: budget share {experiment.control.share:g}, the budget cannot bind",
        )
    results.append(
        f"![cumulative expected profit against budget used; profit differences across shuffles]({images['main']})"
    )

    tuning = experiment.tuning
    ranked = sorted(tuning.points, key=lambda p: -p.mean_uplift)
    shares = experiment.shares
    control = experiment.control
    control_header = f" uplift @ {control.share:g} (control, not scored) |" if control else ""
    tuning_lines = [
        (
            f"Grid of {len(tuning.points)} settings, each replayed on {tuning.shuffles} `tune` shuffles per budget share. "
            "The score is the mean expected profit relative to FCFS on the same orders, averaged over the budget shares; "
            "the control column is shown, not scored."
        ),
        "",
        "| rank | max_margin | steepness | "
        + " | ".join(f"uplift @ {s:g}" for s in shares)
        + f" | mean uplift |{control_header}",
        "|---|---|---|" + "---|" * (len(shares) + 1) + ("---|" if control else ""),
    ]
    shown = ranked[:8]
    if tuning.policy_point not in shown:
        shown.append(tuning.policy_point)
    for point in shown:
        mark = " (policy)" if point is tuning.policy_point else ""
        control_cell = f" {point.control_uplift:+.2%} |" if point.control_uplift is not None else ""
        tuning_lines.append(
            f"| {ranked.index(point) + 1}{mark} | {point.max_margin:g} | {point.steepness:g} | "
            + " | ".join(f"{point.uplift[s]:+.2%}" for s in shares)
            + f" | {point.mean_uplift:+.2%} |{control_cell}"
        )
    frontier = pareto_frontier(tuning.points)
    if frontier:
        tuning_lines += [
            "",
            "The trade-off: settings no other setting beats on both the mean uplift at the tight budgets and the "
            "uplift at the control (both on the `tune` orders), most aggressive first"
            + (f"; the first {FRONTIER_ROWS} of {len(frontier)}." if len(frontier) > FRONTIER_ROWS else "."),
            "",
            "| max_margin | steepness | mean uplift | uplift @ control |",
            "|---|---|---|---|",
        ]
        for point in frontier[:FRONTIER_ROWS]:
            mark = " (policy)" if point is tuning.policy_point else ""
            tuning_lines.append(
                f"| {point.max_margin:g}{mark} | {point.steepness:g} | {point.mean_uplift:+.2%} | {point.control_uplift:+.2%} |"
            )
        if tuning.policy_point not in frontier:
            tuning_lines += [
                "",
                "The policy's setting is not on this frontier: another setting is at least as good on both.",
            ]
    tuning_lines += [
        "",
        (
            "Tuned and balanced settings against the policy's on the reported (`test`) orders, expected profit (CNY/yr), "
            "mean ± 2 SE and shuffles ahead:"
        ),
        "",
        "| budget share | tuned − policy pacing | tuned − FCFS | balanced − policy pacing | balanced − FCFS |",
        "|---|---|---|---|---|",
    ]
    for level in every:
        note = " (control)" if level is control else ""
        cells = []
        for rule in ("tuned", "balanced"):
            for baseline in ("pacing", "fcfs"):
                diff = level.difference(rule, "expected_profit", baseline)
                cells.append(f"{_difference_text('expected_profit', diff)} ({diff.wins}/{diff.n})")
        tuning_lines.append(f"| {level.share:g}{note} | " + " | ".join(cells) + " |")
    tuning_lines += ["", f"![tuning grid]({images['tuning']})"]

    verdict = []
    for level in experiment.levels:
        verdict.append(f"- Budget share {level.share:g}: " + _verdict_line(level, "pacing", "the policy's pacing"))
    if control:
        verdict.append(
            f"- Control (budget share {control.share:g}, nothing to save): "
            + _verdict_line(control, "pacing", "the policy's pacing")
        )
    for rule, setting in (("tuned", tuned), ("balanced", balanced)):
        if (setting.max_margin, setting.steepness) == (pacing.max_margin, pacing.steepness):
            verdict.append(f"- The {rule} setting is the policy's own.")
            continue
        gains = [level.difference(rule, "expected_profit", "pacing") for level in experiment.levels]
        better = all(g.low > 0 for g in gains)
        line = (
            f"- The {rule} setting (max_margin {setting.max_margin:g}, steepness {setting.steepness:g}) "
            + ("beat" if better else "did not clearly beat")
            + " the policy's on the reported orders at every tight budget share"
            + (" (each interval excludes zero)" if better else " (some interval includes zero or favours the policy)")
        )
        if control:
            cost = control.difference(rule, "expected_profit", "pacing")
            line += (
                f"; where the budget cannot bind, its expected profit minus the policy's pacing's was "
                f"{_difference_text('expected_profit', cost)} CNY/yr (ahead in {cost.wins} of {cost.n} shuffles)"
            )
        verdict.append(line + ".")
    return {
        "pacing-parameters": "\n".join(parameters),
        "pacing-results": "\n".join(results),
        "pacing-tuning": "\n".join(tuning_lines),
        "pacing-verdict": "\n".join(verdict),
    }


FRONTIER_ROWS = 10
DOC_SKELETON = "# Budget pacing\n"


def _replace_section(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    start = text.find(begin)
    stop = text.find(end, start)
    if start >= 0 and stop >= 0:
        return text[:start] + block + text[stop + len(end) :]
    return text.rstrip() + "\n\n" + block + "\n"


def write_doc(experiment: Experiment, out: Path, images: Mapping[str, Path]) -> Path:
    """Rewrite the generated sections of `out`/pacing.md; hand-written text around them stays."""
    path = out / "pacing.md"
    text = path.read_text(encoding="utf-8") if path.exists() else DOC_SKELETON
    relative = {name: image.relative_to(out).as_posix() for name, image in images.items()}
    for name, body in render_sections(experiment, relative).items():
        text = _replace_section(text, name, body)
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def representative(level: Level) -> int:
    """The shuffle whose pacing − FCFS profit difference is nearest the median one."""
    diffs = _diffs(level)
    middle = statistics.median(diffs)
    return min(range(len(diffs)), key=lambda k: (abs(diffs[k] - middle), k))


def _cumulative(run: Run) -> tuple[list[int], list[float], list[float]]:
    """Arrival position, exposure budget used and expected profit after each grant (starting from zero)."""
    budget = sum(b.exposure for b in run.budgets.values()) or 1
    positions, used, profit = [0], [0.0], [0.0]
    exposure = 0
    for g in run.grants:
        exposure += g.limit
        positions.append(g.position + 1)
        used.append(exposure / budget)
        profit.append(profit[-1] + g.limit * g.margin)
    return positions, used, profit


def write_plots(experiment: Experiment, directory: Path) -> dict[str, Path]:
    """docs/img/pacing.png (one shuffle's paths and the difference distribution) and pacing-tuning.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    paths = {"main": directory / "pacing.png", "tuning": directory / "pacing-tuning.png"}
    metadata = {"Software": None}
    colours = {
        "fcfs": "tab:grey",
        "pacing": "tab:blue",
        "tuned": "tab:green",
        "balanced": "tab:orange",
        "hindsight": "black",
    }

    level = experiment.levels[len(experiment.levels) // 2]
    k = representative(level)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for rule in (*RULES, "hindsight"):
        run = level.hindsight if rule == "hindsight" else level.runs[rule][k]
        positions, used, profit = _cumulative(run)
        style = {
            "color": colours[rule],
            "lw": 1.2 if rule == "hindsight" else 1.8,
            "ls": ":" if rule == "hindsight" else "-",
        }
        axes[0].plot(used, profit, label=RULE_LABELS[rule], **style)
        if rule != "hindsight":
            axes[1].step(positions, used, where="post", label=RULE_LABELS[rule], **style)
    axes[0].set(xlabel="exposure budget used", ylabel="cumulative expected profit (CNY/yr)")
    axes[0].set_title(f"Budget share {level.share:g}, shuffle {k} (median difference)", fontsize=10)
    axes[0].legend(fontsize=8, loc="upper left")
    axes[1].set(xlabel="applications arrived", ylabel="exposure budget used", ylim=(0, 1.05))
    axes[1].set_title("How fast each rule spends the budget", fontsize=10)
    axes[1].legend(fontsize=8, loc="lower right")

    diffs = {lv.share: [d / 1000 for d in _diffs(lv)] for lv in experiment.levels}
    low = min(min(v) for v in diffs.values())
    high = max(max(v) for v in diffs.values())
    width = (high - low) / 25 or 1
    bins = [low + i * width for i in range(26)]
    for lv in experiment.levels:
        axes[2].hist(diffs[lv.share], bins=bins, alpha=0.55, label=f"budget share {lv.share:g}")
    axes[2].axvline(0, color="black", lw=0.8)
    axes[2].set(xlabel="pacing − FCFS expected profit (thousand CNY/yr)", ylabel="shuffles")
    axes[2].set_title(f"Paired differences over {experiment.shuffles} shuffles", fontsize=10)
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths["main"], dpi=110, metadata=metadata)
    plt.close(fig)

    tuning = experiment.tuning
    margins = sorted({p.max_margin for p in tuning.points})
    steepness = sorted({p.steepness for p in tuning.points})
    lookup = {(p.max_margin, p.steepness): p.mean_uplift * 100 for p in tuning.points}
    grid = [[lookup.get((m, s), math.nan) for s in steepness] for m in margins]
    fig, ax = plt.subplots(figsize=(7, 5))
    finite = [v for row in grid for v in row if not math.isnan(v)]
    # Clipped so that the few ruinous settings do not wash out the differences that matter.
    bound = min(max(abs(min(finite)), abs(max(finite))), 20) or 1
    image = ax.imshow(grid, cmap="RdBu", vmin=-bound, vmax=bound, aspect="auto", origin="lower")
    ax.set_xticks(range(len(steepness)), [f"{s:g}" for s in steepness])
    ax.set_yticks(range(len(margins)), [f"{m:g}" for m in margins])
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if not math.isnan(value):
                shade = "white" if abs(value) > 0.6 * bound else "black"
                ax.text(j, i, f"{value:+.1f}", ha="center", va="center", fontsize=7, color=shade)
    for point, edge, inset in (
        (tuning.policy_point, "black", 0.0),
        (tuning.chosen, "tab:green", 0.06),
        (tuning.balanced, "tab:orange", 0.12),
    ):
        i, j = margins.index(point.max_margin), steepness.index(point.steepness)
        ax.add_patch(
            plt.Rectangle(
                (j - 0.5 + inset, i - 0.5 + inset), 1 - 2 * inset, 1 - 2 * inset, fill=False, edgecolor=edge, lw=2.5
            )
        )
    ax.set(xlabel="steepness", ylabel="max_margin")
    ax.set_title(
        f"Expected profit vs FCFS, % (mean over budget shares, {tuning.shuffles} tune shuffles)\n"
        "black: policy, green: tuned, orange: balanced",
        fontsize=10,
    )
    fig.colorbar(image, ax=ax, label="uplift %")
    fig.tight_layout()
    fig.savefig(paths["tuning"], dpi=110, metadata=metadata)
    plt.close(fig)
    return paths


def _diffs(level: Level) -> list[float]:
    return [
        p - f
        for f, p in zip(level.values("fcfs", "expected_profit"), level.values("pacing", "expected_profit"), strict=True)
    ]


def main() -> None:
    """Run with the defaults (the CLI, `creditwindow experiment pacing`, has the options)."""
    from creditwindow.experiment_cli import app

    app(["pacing"])


if __name__ == "__main__":
    main()
