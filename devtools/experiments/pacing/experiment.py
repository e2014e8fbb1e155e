"""The pacing experiment: tune the pacing setting on orders the report never uses, then replay the
reported orders through every rule at every budget share. Pure: cases, a policy and seeds in, numbers out."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devtools.experiments.pacing.simulation import (
    CONTROL_SHARE,
    DEFAULT_GRID,
    DEFAULT_SEED,
    DEFAULT_SHARES,
    DEFAULT_SHUFFLES,
    METRICS,
    NOW,
    RULES,
    Case,
    Run,
    StepCallback,
    arrival_order,
    hindsight_order,
    market,
    replay,
    with_budget_share,
    with_pacing,
)
from devtools.experiments.pacing.statistics import PairedDifference, Spread, paired
from services.policy.document import Budget, Pacing, PolicyDocument


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


