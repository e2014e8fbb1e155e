"""`creditwindow policy optimise`: the solver, the options it chooses from, the candidate it writes, and
the candidate's replay agreeing with the optimiser on the German Credit applications."""

from __future__ import annotations

import itertools
import json
import random
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from creditwindow.allocation import (
    Figures,
    SegmentOption,
    agreement,
    candidate_policy,
    choose,
    cutoff_levels,
    optimise,
    replayed_figures,
)
from creditwindow.cli import app
from creditwindow.replay import first_scores
from devtools.scored_period import scored_period
from services.policy.control.document import Budget, PolicyDocument, load_policy, parse_policy
from services.policy.windows.decisions import propose
from services.policy.windows.rules import Offer
from services.scoring.scorecard import Scorecard
from shared.contracts import ScoreComputed
from shared.settings import Settings
from tests.unit.policy.factories import default_policy


def _option(segment: str, exposure: int, loss: int, ret: float, share: float = 1.0) -> SegmentOption:
    budget = Budget(exposure=exposure, expected_loss=loss)
    return SegmentOption(segment, 500.0, budget, share, (), Figures(10, 1, exposure, float(loss), ret))


def _brute_force(options: dict[str, list[SegmentOption]], capital: int, limit: int) -> float:
    best = -1.0
    for combo in itertools.product(*options.values()):
        if sum(o.budget.exposure for o in combo) <= capital and sum(o.budget.expected_loss for o in combo) <= limit:
            best = max(best, sum(o.figures.expected_return for o in combo))
    return best


def test_the_solver_finds_the_known_optimum_where_the_greedy_choice_is_wrong() -> None:
    # Greedy by return per unit of capital takes a's 60/40 first and is then stuck with b's 0;
    # the best is a's 50 with b's 45 (95), found only by weighing both segments together.
    options = {
        "a": [_option("a", 0, 0, 0.0), _option("a", 40, 1, 60.0), _option("a", 30, 1, 50.0)],
        "b": [_option("b", 0, 0, 0.0), _option("b", 70, 1, 45.0), _option("b", 30, 1, 20.0)],
    }
    chosen, status = choose(options, capital=100, expected_loss_limit=10)
    assert chosen["a"].figures.expected_return == 50.0 and chosen["b"].figures.expected_return == 45.0
    assert "Optimal" in status


def test_the_expected_loss_limit_binds_as_well_as_the_capital() -> None:
    options = {
        "a": [_option("a", 0, 0, 0.0), _option("a", 10, 8, 100.0), _option("a", 10, 2, 30.0)],
        "b": [_option("b", 0, 0, 0.0), _option("b", 10, 5, 60.0)],
    }
    chosen, _ = choose(options, capital=1_000, expected_loss_limit=9)
    assert (chosen["a"].figures.expected_return, chosen["b"].figures.expected_return) == (100.0, 0.0)
    chosen, _ = choose(options, capital=1_000, expected_loss_limit=7)
    assert (chosen["a"].figures.expected_return, chosen["b"].figures.expected_return) == (30.0, 60.0)


@pytest.mark.parametrize("seed", range(12))
def test_the_solver_matches_brute_force_on_random_problems(seed: int) -> None:
    rng = random.Random(seed)
    options = {
        segment: [_option(segment, 0, 0, 0.0)]
        + [_option(segment, rng.randrange(1, 100), rng.randrange(1, 50), rng.uniform(0, 100)) for _ in range(rng.randrange(1, 6))]
        for segment in ("a", "b", "c")
    }
    capital, limit = rng.randrange(0, 200), rng.randrange(0, 100)
    chosen, _ = choose(options, capital=capital, expected_loss_limit=limit)
    assert set(chosen) == {"a", "b", "c"}
    assert sum(o.budget.exposure for o in chosen.values()) <= capital
    assert sum(o.budget.expected_loss for o in chosen.values()) <= limit
    assert sum(o.figures.expected_return for o in chosen.values()) == pytest.approx(_brute_force(options, capital, limit))


@pytest.fixture(scope="module")
def policy() -> PolicyDocument:
    return default_policy()


@pytest.fixture(scope="module")
def scores(policy: PolicyDocument) -> list[ScoreComputed]:
    return scored_period(Scorecard.load(), policy)


def test_the_german_credit_period_is_one_budget_period_in_file_order(scores: list[ScoreComputed], policy: PolicyDocument) -> None:
    assert len(scores) == 1000
    times = [s.occurred_at for s in scores]
    assert times == sorted(times) and len(set(times)) == 1000
    assert {t.astimezone(policy.zone).strftime("%Y-%m") for t in times} == {"2026-01"}


def test_raised_cutoffs_keep_everyone_at_or_above_them(scores: list[ScoreComputed], policy: PolicyDocument) -> None:
    proposals = [propose(s, policy, s.occurred_at) for s in first_scores(scores) if s.facts and s.facts.segment == "individual"]
    levels = cutoff_levels(proposals, policy, "individual", 5)
    assert levels[0] == policy.cutoffs["individual"] and levels == sorted(set(levels)) and len(levels) == 5
    offered = sorted(p.score.points for p in proposals if isinstance(p.verdict, Offer))
    for cutoff in levels[1:]:
        kept = [points for points in offered if points >= cutoff]
        assert 0 < len(kept) < len(offered)
    assert cutoff_levels(proposals, policy, "individual", 1) == [policy.cutoffs["individual"]]


def _check_agreement(plan, scores: list[ScoreComputed]) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    replayed = replayed_figures(scores, plan.candidate)
    differences = agreement(plan.figures, replayed)
    assert max(v for row in differences.values() for v in row.values()) <= 0.01
    return differences


def test_the_candidates_replay_agrees_with_the_optimiser_within_one_percent(
    scores: list[ScoreComputed], policy: PolicyDocument
) -> None:
    plan = optimise(scores, policy, capital=8_000_000, expected_loss_limit=300_000)
    assert plan.budget_exposure <= 8_000_000 and plan.budget_expected_loss <= 300_000
    _check_agreement(plan, scores)
    # The capital binds: the candidate lends less than the active policy, which lends to every offer.
    active = replayed_figures(scores, policy)
    assert plan.figures["all"].exposure < active["all"].exposure
    assert 0 < plan.figures["all"].expected_return < active["all"].expected_return
    # No option within the limits earns more than the one chosen.
    best = _brute_force({s: list(o) for s, o in plan.options.items()}, 8_000_000, 300_000)
    assert plan.figures["all"].expected_return == pytest.approx(best)


def test_with_cutoffs_the_candidate_raises_them_and_still_agrees(scores: list[ScoreComputed], policy: PolicyDocument) -> None:
    plan = optimise(scores, policy, capital=5_000_000, expected_loss_limit=120_000, cutoffs=True, levels=4)
    without = optimise(scores, policy, capital=5_000_000, expected_loss_limit=120_000)
    assert any(option.cutoff > policy.cutoffs[segment] for segment, option in plan.chosen.items())  # type: ignore[index]
    assert plan.figures["all"].expected_return >= without.figures["all"].expected_return
    assert plan.budget_exposure <= 5_000_000 and plan.budget_expected_loss <= 120_000
    _check_agreement(plan, scores)


def test_enough_capital_funds_every_offer_and_none_funds_nothing(scores: list[ScoreComputed], policy: PolicyDocument) -> None:
    active = replayed_figures(scores, policy)
    rich = optimise(scores, policy, capital=10**9, expected_loss_limit=10**9, fractions=(0.5,))
    assert all(option.share == 1 and not option.paced for option in rich.chosen.values())
    assert rich.figures["all"].exposure == active["all"].exposure
    assert rich.figures["all"].expected_return == pytest.approx(active["all"].expected_return)
    poor = optimise(scores, policy, capital=0, expected_loss_limit=0, fractions=(0.5,))
    assert all(option.share == 0 for option in poor.chosen.values())
    assert poor.figures["all"].approvals == 0
    _check_agreement(poor, scores)


def test_the_candidate_is_one_version_newer_and_changes_only_cutoffs_budgets_and_pacing(
    scores: list[ScoreComputed], policy: PolicyDocument
) -> None:
    plan = optimise(scores, policy, capital=8_000_000, expected_loss_limit=300_000, fractions=(0.5, 0.25))
    candidate = plan.candidate
    assert candidate.version == policy.version + 1 and candidate.name == policy.name
    changed = {"version", "cutoffs", "budgets", "pacing"}
    assert candidate.model_dump(exclude=changed) == policy.model_dump(exclude=changed)
    assert (candidate.pacing.enabled, candidate.pacing.slack) == (policy.pacing.enabled, policy.pacing.slack)
    for segment, option in plan.chosen.items():
        assert candidate.budgets[segment] == option.budget  # type: ignore[index]
        assert candidate.budgets[segment].period == policy.budgets[segment].period  # type: ignore[index]
        assert tuple(candidate.pacing.demand.get(segment, ())) == option.demand  # type: ignore[call-overload]
    assert candidate_policy(policy, plan.chosen) == candidate


def test_the_command_writes_a_valid_candidate_and_a_report_and_prints_the_agreement(tmp_path: Path) -> None:
    out, report = tmp_path / "candidate.yaml", tmp_path / "report.md"
    arguments = [
        "policy", "optimise", "--capital", "8000000", "--expected-loss-limit", "300000", "--source", "germancredit",
        "--policy", str(Settings().policy_path), "--out", str(out), "--report", str(report), "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["agreement"]["within"] is True and data["agreement"]["max_relative_difference"] <= 0.01
    assert (data["active"], data["candidate"]) == ("default@1", "default@2")
    assert data["budgets"]["exposure"] <= 8_000_000 and data["budgets"]["expected_loss"] <= 300_000
    assert set(data["segments"]) == {"individual", "small_business"}
    candidate = load_policy(out)
    assert candidate.label == "default@2"
    assert parse_policy(out.read_text(encoding="utf-8")) == candidate
    for segment, row in data["segments"].items():
        assert candidate.budgets[segment].exposure == row["budget"]["candidate"]["exposure"]  # type: ignore[index]
        assert row["optimiser"] == row["replay"]
    text = report.read_text(encoding="utf-8")
    assert "## The optimiser against the replay of the candidate" in text and "within the 1% tolerance" in text


def test_an_unknown_source_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    arguments = ["policy", "optimise", "--capital", "1", "--expected-loss-limit", "1", "--source", "nowhere", "--out", str(tmp_path / "c.yaml")]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 1
    assert "unknown source 'nowhere'" in result.output and "germancredit" in result.output
    assert not (tmp_path / "c.yaml").exists()


@pytest.mark.parametrize("later", [timedelta(days=31), timedelta(hours=1)], ids=["next-period", "same-period"])
def test_a_second_run_of_the_same_customers_still_agrees(
    scores: list[ScoreComputed], policy: PolicyDocument, later: timedelta
) -> None:
    # As when the demo ran twice: the same customers apply again, a month later (another budget
    # period) or within the hour (their new windows supersede and release the first ones).
    again = [
        s.model_copy(update={"application_id": f"{s.application_id}_again", "occurred_at": s.occurred_at + later})
        for s in scores
    ]
    history = scores + again
    plan = optimise(history, policy, capital=6_000_000, expected_loss_limit=250_000, fractions=(0.8, 0.5, 0.2))
    assert plan.budget_exposure <= 6_000_000 and plan.budget_expected_loss <= 250_000
    differences = _check_agreement(plan, history)
    assert differences["all"]["expected_return"] <= 0.01
    assert plan.figures["all"].applications == 2000
