"""The pacing experiment: reproducible, fair between the rules, within budget, quick."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devtools.commands.experiment import app
from devtools.experiments.pacing.experiment import Experiment, Level, pareto_frontier, run_experiment, summary
from devtools.experiments.pacing.report import write_doc
from devtools.experiments.pacing.simulation import (
    Case,
    Run,
    arrival_order,
    demand,
    hindsight_order,
    market,
    replay,
    score_cases,
    with_budget_share,
    with_pacing,
)
from devtools.experiments.pacing.statistics import Spread, paired
from services.policy.document import Budget, Pacing, PolicyDocument
from services.policy.ports import Reserved
from services.policy.rules import Offer
from services.scoring.scorecard import Scorecard
from tests.unit.policy.factories import default_policy

SMALL_GRID = ((0.02, 0.5), (0.025, 1.0))


@pytest.fixture(scope="module")
def cases() -> tuple[Case, ...]:
    return score_cases(Scorecard.load())


@pytest.fixture(scope="module")
def policy() -> PolicyDocument:
    return default_policy()


def _small(cases: tuple[Case, ...], policy: PolicyDocument, seed: int = 7) -> Experiment:
    return run_experiment(
        cases, policy, model_id="test", shuffles=3, seed=seed, shares=(0.3, 0.6), tuning_shuffles=2, grid=SMALL_GRID
    )


@pytest.fixture(scope="module")
def experiment(cases: tuple[Case, ...], policy: PolicyDocument) -> Experiment:
    return _small(cases, policy)


def _every_level(experiment: Experiment) -> list[Level]:
    return [*experiment.levels, *([experiment.control] if experiment.control else [])]


def _every_run(experiment: Experiment) -> list[Run]:
    return [run for level in _every_level(experiment) for runs in level.runs.values() for run in runs] + [
        level.hindsight for level in _every_level(experiment)
    ]


def test_the_same_seed_gives_identical_results(
    cases: tuple[Case, ...], policy: PolicyDocument, experiment: Experiment
) -> None:
    again = _small(cases, policy)
    assert json.dumps(summary(again), sort_keys=True) == json.dumps(summary(experiment), sort_keys=True)


def test_another_seed_gives_other_orders_and_other_results(
    cases: tuple[Case, ...], policy: PolicyDocument, experiment: Experiment
) -> None:
    other = _small(cases, policy, seed=8)
    assert other.levels[0].runs["fcfs"][0].order != experiment.levels[0].runs["fcfs"][0].order
    assert summary(other)["levels"] != summary(experiment)["levels"]


def test_orders_are_permutations_and_tuning_never_replays_a_reported_order() -> None:
    reported = {arrival_order(1000, 2026, k, "test") for k in range(20)}
    tuning = {arrival_order(1000, 2026, k, "tune") for k in range(20)}
    assert all(sorted(order) == list(range(1000)) for order in reported | tuning)
    assert len(reported) == 20 and len(tuning) == 20
    assert not reported & tuning
    assert arrival_order(1000, 2026, 3) == arrival_order(1000, 2026, 3, "test")


def test_every_rule_sees_the_same_applications_in_the_same_order_under_the_same_budget(experiment: Experiment) -> None:
    for level in _every_level(experiment):
        for k in range(experiment.shuffles):
            runs = [level.runs[rule][k] for rule in level.runs]
            assert len({run.order for run in runs}) == 1
            assert len({run.offers for run in runs}) == 1
            assert all(run.budgets == level.budgets for run in runs)
        assert len({level.runs["fcfs"][k].order for k in range(experiment.shuffles)}) == experiment.shuffles


def test_first_come_first_served_never_paces_and_pacing_does_once_the_budget_fills(experiment: Experiment) -> None:
    for level in experiment.levels:
        assert all(run.paced == 0 for run in level.runs["fcfs"])
        assert any(run.paced > 0 for run in level.runs["pacing"])


def test_no_run_ever_takes_more_than_its_budget(experiment: Experiment, policy: PolicyDocument) -> None:
    programmes: dict[str, int] = {p.name: p.budget for p in policy.programmes}
    for run in _every_run(experiment):
        for segment, reserved in run.ledger.items():
            budget = run.budgets[segment]
            assert reserved.exposure <= budget.exposure
            assert reserved.el_fen <= budget.expected_loss * 100
        for name, part in run.programmes.items():
            assert part <= programmes[name]
        assert run.exposure_used <= 1 and run.el_used <= 1


def test_the_ledger_is_the_sum_of_the_grants_with_expected_loss_in_whole_fen(experiment: Experiment) -> None:
    for run in _every_run(experiment):
        for segment, reserved in run.ledger.items():
            grants = [g for g in run.grants if g.segment == segment]
            assert reserved.exposure == sum(g.limit for g in grants)
            assert reserved.el_fen == sum(math.floor(g.limit * g.el_rate * 100 + 0.5) for g in grants)


def test_a_tight_budget_binds_for_first_come_first_served(experiment: Experiment) -> None:
    for level in experiment.levels:
        for run in level.runs["fcfs"]:
            assert len(run.grants) < run.offers
            assert max(run.exposure_used, run.el_used) > 0.9


def test_a_budget_as_large_as_demand_lets_first_come_first_served_open_every_offer(experiment: Experiment) -> None:
    assert experiment.control is not None
    for run in experiment.control.runs["fcfs"]:
        assert len(run.grants) == run.offers


def test_the_budget_share_scales_both_budgets_of_every_segment(cases: tuple[Case, ...], policy: PolicyDocument) -> None:
    wanted = demand(cases, policy)
    assert wanted["individual"][0] > 0 and wanted["small_business"][0] > 0
    budgets: dict[str, Budget] = {str(s): b for s, b in with_budget_share(policy, cases, 0.4).budgets.items()}
    for segment, (exposure, loss) in wanted.items():
        assert budgets[segment].exposure == math.floor(0.4 * exposure)
        assert budgets[segment].expected_loss == math.floor(0.4 * loss)
    shared = with_budget_share(policy, cases, 0.4)
    assert shared.model_dump(exclude={"budgets"}) == policy.model_dump(exclude={"budgets"})
    with pytest.raises(ValueError):
        with_budget_share(policy, cases, 0)


def test_pacing_alone_changes_between_the_rules(cases: tuple[Case, ...], policy: PolicyDocument) -> None:
    paced = with_pacing(policy, Pacing(max_margin=0.02, steepness=0.5))
    assert paced.pacing == Pacing(max_margin=0.02, steepness=0.5)
    assert paced.model_dump(exclude={"pacing"}) == policy.model_dump(exclude={"pacing"})


def test_pacing_earns_a_higher_margin_per_unit_of_budget_than_first_come_first_served(experiment: Experiment) -> None:
    for level in experiment.levels:
        fcfs = sum(r.expected_profit for r in level.runs["fcfs"]) / sum(r.exposure for r in level.runs["fcfs"])
        pacing = sum(r.expected_profit for r in level.runs["pacing"]) / sum(r.exposure for r in level.runs["pacing"])
        assert pacing > fcfs


def test_hindsight_takes_the_best_margins_first(cases: tuple[Case, ...], policy: PolicyDocument) -> None:
    target = market(cases, with_budget_share(policy, cases, 0.5))
    margins = [v.margin for v in (target.verdicts[i] for i in hindsight_order(target)) if isinstance(v, Offer)]
    assert margins == sorted(margins, reverse=True)
    run = replay(target, hindsight_order(target))
    assert [g.margin for g in run.grants] == sorted((g.margin for g in run.grants), reverse=True)


def test_replay_refuses_nothing_when_every_offer_is_closed_already(
    cases: tuple[Case, ...], policy: PolicyDocument
) -> None:
    closed = policy.model_copy(update={"cutoffs": {"individual": 10_000.0, "small_business": 10_000.0}})
    run = replay(market(cases, closed), range(len(cases)))
    assert (run.offers, run.grants, run.paced, run.exhausted) == (0, (), 0, 0)
    assert all(reserved == Reserved() for reserved in run.ledger.values())


def test_a_paired_difference_counts_the_shuffles_each_side_won() -> None:
    diff = paired([10.0, 20.0, 30.0, 40.0], [11.0, 20.0, 33.0, 39.0])
    assert (diff.mean, diff.wins, diff.losses, diff.n) == (0.75, 2, 1, 4)
    assert diff.se == pytest.approx(Spread.of([1.0, 0.0, 3.0, -1.0]).std / 2)
    assert diff.low == pytest.approx(diff.mean - 2 * diff.se)
    assert diff.sign_test_p == pytest.approx(1.0)
    assert paired([0.0] * 10, [1.0] * 10).sign_test_p == pytest.approx(2 / 2**10)
    with pytest.raises(ValueError):
        paired([1.0], [1.0, 2.0])


def test_a_spread_reports_the_fifth_and_ninety_fifth_percentiles() -> None:
    spread = Spread.of(float(v) for v in range(101))
    assert (spread.mean, spread.p5, spread.p95) == (50.0, 5.0, 95.0)
    assert Spread.of([3.0]) == Spread(3.0, 0.0, 3.0, 3.0)


def test_the_frontier_keeps_only_settings_nothing_beats_on_both_counts(experiment: Experiment) -> None:
    frontier = pareto_frontier(experiment.tuning.points)
    assert frontier
    scores = [(p.mean_uplift, p.control_uplift or 0.0) for p in experiment.tuning.points]
    assert all(p.control_uplift is not None for p in experiment.tuning.points)
    for p, (tight, loose) in zip(experiment.tuning.points, scores, strict=True):
        beaten = any(t >= tight and c >= loose and (t, c) != (tight, loose) for t, c in scores)
        assert (p in frontier) != beaten


def test_the_balanced_setting_is_no_worse_than_the_policys_on_the_tuning_orders(experiment: Experiment) -> None:
    tuning = experiment.tuning
    assert tuning.balanced.mean_uplift >= tuning.policy_point.mean_uplift
    assert tuning.balanced.control_uplift is not None and tuning.policy_point.control_uplift is not None
    assert tuning.balanced.control_uplift >= tuning.policy_point.control_uplift
    assert tuning.chosen.mean_uplift == max(p.mean_uplift for p in tuning.points)


def test_the_document_keeps_hand_written_text_and_replaces_only_its_sections(
    experiment: Experiment, tmp_path: Path
) -> None:
    images = {"main": tmp_path / "img" / "pacing.png", "tuning": tmp_path / "img" / "pacing-tuning.png"}
    (tmp_path / "pacing.md").write_text("# Budget pacing\n\nWritten by hand.\n", encoding="utf-8")
    write_doc(experiment, tmp_path, images)
    write_doc(experiment, tmp_path, images)
    text = (tmp_path / "pacing.md").read_text(encoding="utf-8")
    assert text.count("Written by hand.") == 1
    assert text.count("<!-- BEGIN pacing-results -->") == 1
    assert "--shuffles 3 --seed 7 --budget-share 0.3 --budget-share 0.6 --tuning-shuffles 2" in text
    assert "](img/pacing.png)" in text


def test_a_small_run_through_the_command_ends_with_json(tmp_path: Path) -> None:
    # No time limit asserted here: speed is measured by benchmarks, not by timed unit tests.
    result = CliRunner().invoke(app, ["pacing", "--shuffles", "5", "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert (data["shuffles"], data["budget_shares"], data["offers"]) == (5, [0.25, 0.5, 0.75], 483)
    assert {"fcfs", "pacing", "tuned", "balanced"} == set(data["levels"][0]["rules"])
    assert (tmp_path / "pacing.md").exists() and (tmp_path / "img" / "pacing.png").stat().st_size > 0
