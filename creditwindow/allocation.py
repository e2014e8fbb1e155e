"""Allocating capital across segments: the segment budgets (and cut-offs) that maximise expected return
on recorded scores, under a total exposure limit (capital) and an expected-loss limit. Pure.

`creditwindow policy optimise` runs it on the scores of `credit.scores` (or, with the dev tooling, on
the German Credit rows scored as one budget period) and writes the candidate policy it proposes.

**What is chosen.** For each segment one *option*: a cut-off and a budget (exposure and expected loss
per budget period, the segment's period kept).

- The cut-off is the active one or, with ``cutoffs``, a raised one: at most ``levels`` of them, at
  quantiles of the points of the applicants the rules would approve. Never a lower one: the
  optimiser approves no one the active policy refuses on credit.
- The budget is **the whole demand** at that cut-off: the exposure and expected loss of every window
  the rules would open on the recorded scores (in the busiest budget period, when they span
  several), so the budget never binds and every offer above the cut-off opens, whatever the order;
  or **a share** of it (``fractions``): the budget then binds, and the book grants first come, first
  served or, with the demand curve of the recorded offers written as the segment's pacing forecast
  (`services.policy.windows.forecast`), keeps it for the better margins (both are tried); or **nothing**
  (a zero budget: the segment opens no window), so that any limits can be met.

**The figures of an option are not estimated**: the segment's recorded scores are replayed through
the portfolio book under the option, in the order they were scored, exactly as `creditwindow
simulate` replays them (`creditwindow.replay`): the windows granted, their exposure, expected loss
(limit x PD x LGD) and expected return (limit x margin, CNY a year). Each segment has budgets of its
own, so a policy made of one option per segment decides each segment as its option did: the
optimiser's figures are what `creditwindow simulate --policy` of the candidate shows, and the command
replays the candidate to prove it.

**The choice** is a multiple-choice knapsack with two capacities, solved exactly (relative gap 0) as
a mixed-integer programme by HiGHS through `scipy.optimize.milp`::

    maximise    sum over s, o of  return[s, o] x[s, o]
    subject to  sum over o of  x[s, o] = 1                                  for every segment s
                sum over s, o of  budget_exposure[s, o] x[s, o] <= capital
                sum over s, o of  budget_expected_loss[s, o] x[s, o] <= expected-loss limit
                x[s, o] in {0, 1}

The limits bind the budgets written: what the book may hold reserved in a segment's budget period.
Windows that expire or are superseded within the period give their part back, so the windows
granted over a period can add up to a little more than its budget.

**In sample.** Budgets, cut-offs and forecasts are fit to the recorded scores and judged on the same
scores; the next period's applicants will differ. The figures are the recorded period's.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from creditwindow.outcomes import Outcome
from creditwindow.replay import first_scores, replay_proposals, replay_scores
from services.policy.control.document import Budget, DemandPoint, Pacing, PolicyDocument
from services.policy.windows.decisions import Proposal, budget_period, propose
from services.policy.windows.forecast import demand_curve
from services.policy.windows.rules import Offer
from shared.contracts import ScoreComputed

__all__ = [
    "DEFAULT_FRACTIONS",
    "DEFAULT_LEVELS",
    "RELATIVE",
    "Figures",
    "OptimiseError",
    "Plan",
    "SegmentOption",
    "agreement",
    "candidate_policy",
    "choose",
    "cutoff_levels",
    "figures_of",
    "margins_of",
    "optimise",
    "replayed_figures",
    "replays_per_segment",
    "segment_options",
]

DEFAULT_LEVELS = 10
DEFAULT_FRACTIONS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)
DEFAULT_POINTS = 24
UNLIMITED = 10_000_000_000  # the largest budget a policy accepts: it never binds on recorded scores

StepCallback = Callable[[str], None]


class OptimiseError(ValueError):
    """The problem cannot be solved as asked (no scores, a solver failure); the message says why."""


@dataclass(frozen=True, slots=True)
class Figures:
    """What a policy decides on a set of applications: windows, exposure, expected loss and return."""

    applications: int = 0
    approvals: int = 0
    exposure: int = 0  # CNY, sum of the limits granted
    expected_loss: float = 0.0  # CNY, sum of limit x PD x LGD (the book's, in whole fen)
    expected_return: float = 0.0  # CNY a year, sum of limit x margin

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.applications + other.applications,
            self.approvals + other.approvals,
            self.exposure + other.exposure,
            self.expected_loss + other.expected_loss,
            self.expected_return + other.expected_return,
        )

    @property
    def approval_rate(self) -> float:
        return self.approvals / self.applications if self.applications else 0.0


@dataclass(frozen=True, slots=True)
class SegmentOption:
    """One way to run a segment, and what the replay of its recorded scores gives under it."""

    segment: str
    cutoff: float
    budget: Budget
    share: float  # of the whole demand at the cut-off: 1 never binds, 0 opens nothing
    demand: tuple[DemandPoint, ...]  # the pacing forecast written for the segment (empty: none)
    figures: Figures

    @property
    def paced(self) -> bool:
        return bool(self.demand)

    @property
    def label(self) -> str:
        if self.share == 0:
            return "no budget"
        budget = "whole demand" if self.share == 1 else f"{self.share:.0%} of demand"
        return f"cut-off {self.cutoff:g}, {budget}" + (", paced" if self.paced else "")


@dataclass(frozen=True, slots=True)
class Plan:
    """The options tried, the ones chosen, and the candidate policy they make."""

    capital: int
    expected_loss_limit: int
    options: Mapping[str, tuple[SegmentOption, ...]]
    chosen: Mapping[str, SegmentOption]
    candidate: PolicyDocument
    solver: str
    settings: Mapping[str, object] = field(default_factory=dict)

    @property
    def figures(self) -> dict[str, Figures]:
        """The optimiser's figures per segment and in total (`all`)."""
        found = {segment: option.figures for segment, option in sorted(self.chosen.items())}
        found["all"] = sum(found.values(), Figures())
        return found

    @property
    def budget_exposure(self) -> int:
        return sum(option.budget.exposure for option in self.chosen.values())

    @property
    def budget_expected_loss(self) -> int:
        return sum(option.budget.expected_loss for option in self.chosen.values())


def margins_of(proposals: Iterable[Proposal]) -> dict[str, float]:
    """Each offered application's margin (expected return per CNY of limit a year)."""
    return {p.score.application_id: p.verdict.margin for p in proposals if isinstance(p.verdict, Offer)}


def figures_of(outcomes: Iterable[Outcome], margins: Mapping[str, float]) -> dict[str, Figures]:
    """Per segment and in total (`all`): applications, approvals, exposure, expected loss and return."""
    rows: dict[str, list[float]] = {}
    for o in outcomes:
        for key in (o.segment, "all"):
            row = rows.setdefault(key, [0, 0, 0, 0.0, 0.0])
            row[0] += 1
            if o.opened:
                row[1] += 1
                row[2] += o.limit
                row[3] += o.expected_loss
                row[4] += o.limit * margins.get(o.application_id, 0.0)
    ordered = sorted(rows.items(), key=lambda kv: (kv[0] == "all", kv[0]))
    return {k: Figures(int(v[0]), int(v[1]), int(v[2]), v[3], v[4]) for k, v in ordered}


def replayed_figures(
    scores: Iterable[ScoreComputed], policy: PolicyDocument, *, on_each: Callable[[], None] | None = None
) -> dict[str, Figures]:
    """The figures of `creditwindow simulate`'s replay (`replay_scores`) of the scores under `policy`,
    with each window's return at the margin the policy offered it."""
    scores = list(scores)
    outcomes = replay_scores(scores, policy, on_each=on_each)
    return figures_of(outcomes, margins_of(propose(s, policy, s.occurred_at) for s in first_scores(scores)))


def cutoff_levels(proposals: Sequence[Proposal], policy: PolicyDocument, segment: str, levels: int) -> list[float]:
    """The active cut-off, and up to `levels` - 1 raised ones at quantiles of the offered applicants'
    points (each just below the points it keeps, so everyone at or above them stays offered)."""
    active = float(policy.cutoffs[segment])  # type: ignore[index]
    points = sorted(
        {p.score.points for p in proposals if isinstance(p.verdict, Offer) and p.score.points is not None}
    )
    if levels < 2 or len(points) < 2:
        return [active]
    raise_ = policy.cycle.cutoff_raise
    found = [active]
    for k in range(1, levels):
        rank = (k * len(points)) // levels
        if rank < 1:
            continue
        below, kept = points[rank - 1], points[rank]
        middle = (below + kept) / 2
        rounded = round(middle, 2)
        bar = rounded if below < rounded <= kept else middle
        cutoff = bar - raise_
        if below < cutoff + raise_ <= kept and cutoff > found[-1]:
            found.append(cutoff)
    return found


def _with(policy: PolicyDocument, segment: str, cutoff: float, budget: Budget, demand: tuple[DemandPoint, ...]) -> PolicyDocument:
    """The policy with the segment's cut-off, budget and pacing forecast set (none: its forecast removed)."""
    forecasts = {s: points for s, points in policy.pacing.demand.items() if s != segment}
    if demand:
        forecasts[segment] = demand  # type: ignore[index]
    pacing = Pacing(enabled=policy.pacing.enabled, slack=policy.pacing.slack, demand=forecasts)
    return policy.model_copy(
        update={
            "cutoffs": {**policy.cutoffs, segment: cutoff},
            "budgets": {**policy.budgets, segment: budget},
            "pacing": pacing,
        }
    )


def _period_demand(outcomes: Sequence[Outcome], when: Mapping[str, object], policy: PolicyDocument, segment: str) -> tuple[int, int, int]:
    """The exposure and expected loss (fen) granted in the busiest budget period, and the number of periods."""
    exposure: dict[str, int] = {}
    loss_fen: dict[str, int] = {}
    periods = {budget_period(policy, segment, when[o.application_id]) for o in outcomes}  # type: ignore[arg-type]
    for o in outcomes:
        if o.opened:
            label = budget_period(policy, segment, when[o.application_id])  # type: ignore[arg-type]
            exposure[label] = exposure.get(label, 0) + o.limit
            loss_fen[label] = loss_fen.get(label, 0) + round(o.expected_loss * 100)
    return max(exposure.values(), default=0), max(loss_fen.values(), default=0), max(1, len(periods))


def segment_options(
    scores: Sequence[ScoreComputed],
    policy: PolicyDocument,
    segment: str,
    *,
    cutoffs: bool = False,
    levels: int = DEFAULT_LEVELS,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    points: int = DEFAULT_POINTS,
    on_step: StepCallback | None = None,
) -> list[SegmentOption]:
    """Every option tried for one segment, each with the figures of its replay on the segment's scores.

    `on_step` is called after each replay with a description of the option replayed.
    """
    ordered = [s for s in first_scores(scores) if s.facts is not None and s.facts.segment == segment]
    when = {s.application_id: s.occurred_at for s in ordered}
    active_proposals = [propose(s, policy, s.occurred_at) for s in ordered]
    period = policy.budgets[segment].period  # type: ignore[index]
    options: list[SegmentOption] = []

    def run(proposals: Sequence[Proposal], cutoff: float, budget: Budget, share: float, demand: tuple[DemandPoint, ...]) -> SegmentOption:
        outcomes = replay_proposals(proposals, _with(policy, segment, cutoff, budget, demand))
        figures = figures_of(outcomes, margins_of(proposals)).get(segment, Figures(applications=len(proposals)))
        option = SegmentOption(segment, cutoff, budget, share, demand, figures)
        if on_step:
            on_step(f"{segment}: {option.label}")
        return option

    levels_tried = cutoff_levels(active_proposals, policy, segment, levels) if cutoffs else [float(policy.cutoffs[segment])]  # type: ignore[index]
    for cutoff in levels_tried:
        rules = _with(policy, segment, cutoff, Budget(exposure=UNLIMITED, expected_loss=UNLIMITED, period=period), ())
        proposals = [propose(s, rules, s.occurred_at) for s in ordered]
        unlimited = replay_proposals(proposals, rules)
        exposure, loss_fen, periods = _period_demand(unlimited, when, policy, segment)
        if exposure == 0:
            continue  # nothing offered at this cut-off: the same as no budget
        # The whole demand: enough for every window in the busiest period (the expected loss with the
        # fen each rounded window may add, so the last window is never trimmed).
        whole = Budget(exposure=exposure, expected_loss=math.ceil(loss_fen / 100 + 0.01), period=period)
        options.append(run(proposals, cutoff, whole, 1.0, ()))
        offered = [
            (p.verdict.margin, p.verdict.limit, p.verdict.limit * p.verdict.el_rate)
            for p in proposals
            if isinstance(p.verdict, Offer)
        ]
        forecast = demand_curve(offered, points=points, scale=1 / periods)
        for share in fractions:
            budget = Budget(exposure=math.floor(share * whole.exposure), expected_loss=math.floor(share * whole.expected_loss), period=period)
            options.append(run(proposals, cutoff, budget, share, ()))
            if policy.pacing.enabled and forecast:
                options.append(run(proposals, cutoff, budget, share, forecast))
    nothing = Budget(exposure=0, expected_loss=0, period=period)
    options.append(run(active_proposals, float(policy.cutoffs[segment]), nothing, 0.0, ()))  # type: ignore[index]
    return options


def choose(
    options: Mapping[str, Sequence[SegmentOption]], capital: int, expected_loss_limit: int
) -> tuple[dict[str, SegmentOption], str]:
    """One option per segment maximising the total expected return within both limits (a MILP, HiGHS)."""
    flat = [(segment, option) for segment in sorted(options) for option in options[segment]]
    if not flat:
        raise OptimiseError("no segment to allocate")
    segments = sorted(options)
    n = len(flat)
    returns = np.array([option.figures.expected_return for _, option in flat], dtype=float)
    one_each = np.zeros((len(segments), n))
    for j, (segment, _) in enumerate(flat):
        one_each[segments.index(segment), j] = 1.0
    limits = np.array(
        [[float(option.budget.exposure) for _, option in flat], [float(option.budget.expected_loss) for _, option in flat]]
    )
    result = milp(
        c=-returns,
        integrality=np.ones(n),
        bounds=Bounds(0, 1),
        constraints=[
            LinearConstraint(one_each, 1, 1),
            LinearConstraint(limits, -np.inf, [float(capital), float(expected_loss_limit)]),
        ],
        options={"mip_rel_gap": 0.0, "presolve": True},
    )
    if result.status != 0 or result.x is None:
        raise OptimiseError(f"the solver found no allocation: {result.message}")
    chosen = {segment: option for (segment, option), x in zip(flat, result.x, strict=True) if x > 0.5}
    if sorted(chosen) != segments:
        raise OptimiseError(f"the solver's answer does not pick one option per segment: {result.message}")
    return chosen, str(result.message)


def candidate_policy(active: PolicyDocument, chosen: Mapping[str, SegmentOption]) -> PolicyDocument:
    """The active policy with the chosen cut-offs, budgets and pacing forecasts, one version newer;
    everything else as it was. Validated as any policy file is."""
    document = active
    for segment, option in sorted(chosen.items()):
        document = _with(document, segment, option.cutoff, option.budget, option.demand)
    data = document.model_dump(mode="json")
    data["version"] = active.version + 1
    return PolicyDocument.model_validate(data)


def optimise(
    scores: Sequence[ScoreComputed],
    policy: PolicyDocument,
    *,
    capital: int,
    expected_loss_limit: int,
    cutoffs: bool = False,
    levels: int = DEFAULT_LEVELS,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    points: int = DEFAULT_POINTS,
    on_step: StepCallback | None = None,
) -> Plan:
    """The options of every segment, the best choice within the limits, and the candidate policy."""
    if capital < 0 or expected_loss_limit < 0:
        raise OptimiseError("the capital and the expected-loss limit cannot be negative")
    if not any(s.facts is not None for s in scores):
        raise OptimiseError("no recorded application to optimise on")
    if any(not 0 < f < 1 for f in fractions):
        raise OptimiseError("budget fractions are shares of the demand, strictly between 0 and 1")
    options = {
        str(segment): tuple(
            segment_options(
                scores, policy, str(segment), cutoffs=cutoffs, levels=levels, fractions=fractions, points=points, on_step=on_step
            )
        )
        for segment in sorted(policy.budgets)
    }
    chosen, message = choose(options, capital, expected_loss_limit)
    return Plan(
        capital=capital,
        expected_loss_limit=expected_loss_limit,
        options=options,
        chosen=chosen,
        candidate=candidate_policy(policy, chosen),
        solver=message,
        settings={"cutoffs": cutoffs, "levels": levels, "fractions": tuple(fractions), "points": points},
    )


def replays_per_segment(cutoffs: bool, levels: int, fractions: Sequence[float], paced: bool) -> int:
    """At most how many replays `segment_options` makes per segment (for a progress bar)."""
    per_level = 1 + len(fractions) * (2 if paced else 1)
    return (levels if cutoffs else 1) * per_level + 1


RELATIVE = ("approvals", "exposure", "expected_loss", "expected_return")


def agreement(predicted: Mapping[str, Figures], replayed: Mapping[str, Figures]) -> dict[str, dict[str, float]]:
    """Per segment (and `all`), the relative difference of each figure: |replay - optimiser| / |optimiser|
    (0 when both are 0; 1 when only the optimiser's is 0)."""
    found = {}
    for segment, expected in predicted.items():
        actual = replayed.get(segment, Figures())
        row = {}
        for name in RELATIVE:
            want, got = float(getattr(expected, name)), float(getattr(actual, name))
            row[name] = 0.0 if want == got else abs(got - want) / abs(want) if want else 1.0
        found[segment] = row
    return found
