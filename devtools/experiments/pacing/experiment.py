"""The pacing experiment: tune the slack on orders the report never uses, then replay the reported
orders through every rule at every budget share. Pure: cases, a policy and seeds in, numbers out.

Every rule at a budget share sees the same orders under the same budgets; the two pacing rules also
read the same forecast (the shuffle's earlier period), and differ only in their slack.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devtools.experiments.pacing.simulation import (
    DEFAULT_POINTS,
    DEFAULT_SEED,
    DEFAULT_SHARES,
    DEFAULT_SHUFFLES,
    DEFAULT_SLACKS,
    FULL_TOLERANCE,
    METRICS,
    NOW,
    RULES,
    TIGHT_TARGET,
    Case,
    Forecast,
    Market,
    Run,
    StepCallback,
    arrival_order,
    demand,
    fcfs,
    forecast,
    forecast_sample,
    hindsight_order,
    market,
    paced,
    replay,
    with_budget_share,
)
from devtools.experiments.pacing.statistics import PairedDifference, Spread, paired
from services.policy.control.document import Budget, Pacing, PolicyDocument


def share_key(share: float) -> str:
    """A budget share as a JSON key: 0.25 -> "0.25", 1.0 -> "1"."""
    return f"{share:g}"


def target_for(share: float) -> float:
    """The least uplift over FCFS the issue asks for at a budget share."""
    return -FULL_TOLERANCE if share >= 1 else TIGHT_TARGET


@dataclass(frozen=True, slots=True)
class SlackPoint:
    """One slack on the tuning orders: mean expected profit relative to FCFS, per budget share."""

    slack: float
    uplift: Mapping[float, float]  # share -> mean paced profit / mean FCFS profit - 1
    # share -> the pessimistic end of that uplift: (mean paired difference - 2 SE) / mean FCFS profit
    low: Mapping[float, float] = field(default_factory=dict)

    @property
    def mean_uplift(self) -> float:
        """The mean uplift at the tight budgets (share < 1); at every share when none is tight."""
        tight = [value for share, value in self.uplift.items() if share < 1] or list(self.uplift.values())
        return statistics.fmean(tight)

    @property
    def full_uplift(self) -> float | None:
        """The uplift where the budget equals the demand (share 1), if tried."""
        return next((value for share, value in self.uplift.items() if share >= 1), None)

    @property
    def full_low(self) -> float | None:
        """The pessimistic end of the uplift where the budget equals the demand (share 1), if tried."""
        return next((value for share, value in self.low.items() if share >= 1), self.full_uplift)

    @property
    def acceptable(self) -> bool:
        """Within the issue's tolerance where the budget cannot bind, even at the pessimistic end of the
        interval (mean - 2 SE), so that the choice holds on orders it was not tuned on."""
        low = self.full_low
        return low is None or low >= -FULL_TOLERANCE


@dataclass(frozen=True, slots=True)
class Tuning:
    """The slack search on orders (and forecasts) the reported runs never use (purpose ``tune``)."""

    seed: int
    shuffles: int
    points: tuple[SlackPoint, ...]
    chosen: SlackPoint  # the best mean tight uplift among the acceptable slacks (else the least loss at share 1)
    policy_point: SlackPoint  # the policy's own slack, on the same orders


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

    def uplift(self, rule: str) -> float:
        """Mean expected profit of `rule` relative to FCFS's on the same orders (0.1 = 10% more)."""
        base = statistics.fmean(self.values("fcfs", "expected_profit"))
        return statistics.fmean(self.values(rule, "expected_profit")) / base - 1 if base else 0.0

    @property
    def hindsight_uplift(self) -> float:
        base = statistics.fmean(self.values("fcfs", "expected_profit"))
        return self.hindsight.expected_profit / base - 1 if base else 0.0

    def every_run(self) -> list[Run]:
        return [run for runs in self.runs.values() for run in runs] + [self.hindsight]


@dataclass(frozen=True, slots=True)
class Experiment:
    seed: int
    shuffles: int
    shares: tuple[float, ...]
    policy_label: str
    model_id: str
    pacing: Pacing  # the policy's own (its demand is replaced by each shuffle's forecast)
    tuning: Tuning
    levels: tuple[Level, ...]
    applications: int
    offers: int
    demand: Mapping[str, tuple[int, float]]  # per segment, what every approvable applicant would take
    samples: tuple[tuple[int, ...], ...]  # per reported shuffle, the rows of its earlier period
    forecasts: tuple[Forecast, ...]  # per reported shuffle, the demand curves pacing read
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def slack(self) -> float:
        return self.pacing.slack

    @property
    def tuned_slack(self) -> float:
        return self.tuning.chosen.slack

    def every_run(self) -> list[Run]:
        return [run for level in self.levels for run in level.every_run()]

    @property
    def most_used(self) -> float:
        """The largest share of any one budget that any run took (above 1 would be an overspend)."""
        return max(run.most_used for run in self.every_run())

    def targets(self) -> dict[str, dict[str, Any]]:
        """Per budget share, the policy's pacing against the issue's target (reported orders)."""
        found = {}
        for level in self.levels:
            uplift, target = level.uplift("pacing"), target_for(level.share)
            found[share_key(level.share)] = {"uplift": uplift, "target": target, "met": uplift >= target}
        return found


def _policy_pacing(policy: PolicyDocument, target_forecast: Forecast) -> PolicyDocument:
    """The policy's own pacing setting, reading the shuffle's forecast (off stays off)."""
    if not policy.pacing.enabled:
        return fcfs(policy)
    return paced(policy, policy.pacing.slack, target_forecast)


def slack_settings(slacks: Sequence[float], policy_pacing: Pacing) -> list[float]:
    """The slack values tuning tries: the grid, plus the policy's own if missing."""
    return sorted(set([*slacks, policy_pacing.slack]))


def _tune(
    target: Market,
    budgeted: Mapping[float, PolicyDocument],
    slacks: Sequence[float],
    *,
    seed: int,
    shuffles: int,
    points: int,
    policy_pacing: Pacing,
    on_step: StepCallback | None,
) -> Tuning:
    n = len(target.cases)
    orders = [arrival_order(n, seed, k, "tune") for k in range(shuffles)]
    forecasts = [forecast(target, forecast_sample(n, seed, k, "tune"), points) for k in range(shuffles)]

    def profits(policies: Sequence[PolicyDocument]) -> list[float]:
        return [replay(target, p, order).expected_profit for p, order in zip(policies, orders, strict=True)]

    baseline = {share: profits([fcfs(policy)] * shuffles) for share, policy in budgeted.items()}
    found = []
    for slack in slack_settings(slacks, policy_pacing):
        uplift, low = {}, {}
        for share, policy in budgeted.items():
            base = statistics.fmean(baseline[share])
            diff = paired(baseline[share], profits([paced(policy, slack, f) for f in forecasts]))
            uplift[share] = diff.mean / base if base else 0.0
            low[share] = diff.low / base if base else 0.0
        found.append(SlackPoint(slack, uplift, low))
        if on_step:
            on_step("tune")
    acceptable = [p for p in found if p.acceptable]
    # Ties go to the larger slack: it paces later, refusing fewer customers.
    if acceptable:
        chosen = max(acceptable, key=lambda p: (round(p.mean_uplift, 9), p.slack))
    else:
        chosen = max(found, key=lambda p: (round(p.full_low or 0.0, 9), p.slack))
    own = next(p for p in found if p.slack == policy_pacing.slack)
    return Tuning(seed=seed, shuffles=shuffles, points=tuple(found), chosen=chosen, policy_point=own)


def _level(
    share: float,
    policy: PolicyDocument,
    target: Market,
    tuned_slack: float,
    orders: Sequence[Sequence[int]],
    forecasts: Sequence[Forecast],
    on_step: StepCallback | None,
) -> Level:
    runs: dict[str, list[Run]] = {rule: [] for rule in RULES}
    first_come = fcfs(policy)
    for order, predicted in zip(orders, forecasts, strict=True):
        rules = {
            "fcfs": first_come,
            "pacing": _policy_pacing(policy, predicted),
            "tuned": paced(policy, tuned_slack, predicted),
        }
        for rule in RULES:
            runs[rule].append(replay(target, rules[rule], order))
        if on_step:
            on_step("test")
    return Level(
        share=share,
        budgets={str(segment): budget for segment, budget in policy.budgets.items()},
        runs={rule: tuple(found) for rule, found in runs.items()},
        hindsight=replay(target, first_come, hindsight_order(target)),
    )


def run_experiment(
    cases: Sequence[Case],
    policy: PolicyDocument,
    *,
    model_id: str,
    shuffles: int = DEFAULT_SHUFFLES,
    seed: int = DEFAULT_SEED,
    shares: Sequence[float] = DEFAULT_SHARES,
    tuning_shuffles: int | None = None,
    slacks: Sequence[float] = DEFAULT_SLACKS,
    points: int = DEFAULT_POINTS,
    now: datetime = NOW,
    on_step: StepCallback | None = None,
) -> Experiment:
    """Tune the slack on the ``tune`` orders, then replay the ``test`` orders through FCFS, the policy's
    pacing and the tuned slack at every budget share.

    `on_step` is called with ``"tune"`` after each slack tried and ``"test"`` after each reported
    shuffle of each budget share.
    """
    if shuffles < 1:
        raise ValueError("at least one shuffle")
    cases = tuple(cases)
    shares = tuple(sorted(set(shares)))
    tuning_shuffles = shuffles if tuning_shuffles is None else tuning_shuffles
    target = market(cases, policy, now)
    budgeted = {share: with_budget_share(policy, cases, share, now) for share in shares}
    tuning = _tune(
        target,
        budgeted,
        slacks,
        seed=seed,
        shuffles=tuning_shuffles,
        points=points,
        policy_pacing=policy.pacing,
        on_step=on_step,
    )
    n = len(cases)
    orders = [arrival_order(n, seed, k, "test") for k in range(shuffles)]
    samples = tuple(forecast_sample(n, seed, k, "test") for k in range(shuffles))
    forecasts = tuple(forecast(target, sample, points) for sample in samples)
    levels = [_level(share, p, target, tuning.chosen.slack, orders, forecasts, on_step) for share, p in budgeted.items()]
    return Experiment(
        seed=seed,
        shuffles=shuffles,
        shares=shares,
        policy_label=policy.label,
        model_id=model_id,
        pacing=policy.pacing,
        tuning=tuning,
        levels=tuple(levels),
        applications=n,
        offers=len(target.offers()),
        demand=demand(cases, policy, now),
        samples=samples,
        forecasts=forecasts,
        settings={"tuning_shuffles": tuning_shuffles, "slacks": len(tuning.points), "points": points},
    )


def forecast_error(experiment: Experiment) -> dict[str, Spread]:
    """Per segment, the forecast's whole demand (exposure) over the period's actual one, minus 1, across shuffles."""
    found: dict[str, list[float]] = {}
    for curves in experiment.forecasts:
        for segment, (actual, _) in experiment.demand.items():
            curve = curves.get(segment, ())
            predicted = curve[0].exposure if curve else 0
            found.setdefault(segment, []).append(predicted / actual - 1 if actual else 0.0)
    return {segment: Spread.of(values) for segment, values in found.items()}


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


def _level_json(level: Level) -> dict[str, Any]:
    return {
        "budget_share": level.share,
        "budgets": {s: {"exposure": b.exposure, "expected_loss": b.expected_loss} for s, b in level.budgets.items()},
        "rules": {rule: {metric: _spread_json(level.spread(rule, metric)) for metric in METRICS} for rule in RULES},
        "hindsight": {metric: level.hindsight.metric(metric) for metric in METRICS},
        "uplift_vs_fcfs": {rule: level.uplift(rule) for rule in RULES if rule != "fcfs"}
        | {"hindsight": level.hindsight_uplift},
        "most_budget_used": max(run.most_used for run in level.every_run()),
        "differences": {
            "pacing_minus_fcfs": {m: _difference_json(level.difference("pacing", m)) for m in METRICS},
            "tuned_minus_fcfs": {m: _difference_json(level.difference("tuned", m)) for m in METRICS},
            "tuned_minus_pacing": {m: _difference_json(level.difference("tuned", m, "pacing")) for m in METRICS},
        },
    }


def _point_json(point: SlackPoint) -> dict[str, Any]:
    return {
        "slack": point.slack,
        "mean_uplift": point.mean_uplift,
        "uplift": {share_key(share): value for share, value in point.uplift.items()},
        "uplift_low": {share_key(share): value for share, value in point.low.items()},
        "acceptable": point.acceptable,
    }


def summary(experiment: Experiment) -> dict[str, Any]:
    """Everything the report states, as plain JSON values."""
    tuning = experiment.tuning
    targets = experiment.targets()
    return {
        "experiment": "budget_pacing",
        "rule": "forecast",
        "seed": experiment.seed,
        "shuffles": experiment.shuffles,
        "budget_shares": list(experiment.shares),
        "policy": experiment.policy_label,
        "model_id": experiment.model_id,
        "applications": experiment.applications,
        "offers": experiment.offers,
        "pacing": {
            "enabled": experiment.pacing.enabled,
            "slack": experiment.slack,
            "demand_points": experiment.settings.get("points", DEFAULT_POINTS),
            "forecast": "bootstrap resample of the rows (purpose forecast), never the replayed order",
        },
        "tuned_slack": experiment.tuned_slack,
        # The policy's own pacing setting against FCFS on the reported orders: mean profit ratio - 1.
        "uplift_vs_fcfs": {share_key(level.share): level.uplift("pacing") for level in experiment.levels},
        "uplift_vs_fcfs_tuned": {share_key(level.share): level.uplift("tuned") for level in experiment.levels},
        "uplift_vs_fcfs_hindsight": {share_key(level.share): level.hindsight_uplift for level in experiment.levels},
        "targets": {
            "tight_uplift_at_least": TIGHT_TARGET,
            "full_budget_uplift_at_least": -FULL_TOLERANCE,
            "shares": targets,
            "met": all(t["met"] for t in targets.values()),
        },
        "most_budget_used": experiment.most_used,
        "budget_overspent": experiment.most_used > 1,
        "forecast_error": {s: _spread_json(spread) for s, spread in forecast_error(experiment).items()},
        "tuning": {
            "seed": tuning.seed,
            "shuffles": tuning.shuffles,
            "orders": "tune",
            "slacks": [_point_json(p) for p in tuning.points],
            "chosen": _point_json(tuning.chosen),
            "policy": _point_json(tuning.policy_point),
        },
        "levels": [_level_json(level) for level in experiment.levels],
    }
