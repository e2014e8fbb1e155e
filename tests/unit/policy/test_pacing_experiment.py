"""The pacing experiment: reproducible, fair between the rules, forecast out of sample, within budget, quick."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

import devtools.experiments.pacing.experiment as experiment_module
from devtools.commands.experiment import app
from devtools.experiments.pacing.experiment import Experiment, run_experiment, summary
from devtools.experiments.pacing.report import write_doc
from devtools.experiments.pacing.simulation import (
    NOW,
    Case,
    Run,
    arrival_order,
    demand,
    fcfs,
    forecast,
    forecast_sample,
    hindsight_order,
    market,
    paced,
    replay,
    score_cases,
    with_budget_share,
)
from devtools.experiments.pacing.statistics import Spread, paired
from services.policy.control.document import Budget, PolicyDocument
from services.policy.windows.book import Book
from services.policy.windows.decisions import budget_terms
from services.policy.windows.model import Reserved
from services.policy.windows.rules import Offer
from services.scoring.scorecard import Scorecard
from tests.unit.policy.factories import default_policy

SHARES = (0.3, 0.6, 1.0)
SLACKS = (0.0, 0.3)


@pytest.fixture(scope="module")
def cases() -> tuple[Case, ...]:
    return score_cases(Scorecard.load())


@pytest.fixture(scope="module")
def policy() -> PolicyDocument:
    return default_policy()


def _small(cases: tuple[Case, ...], policy: PolicyDocument, seed: int = 7) -> Experiment:
    return run_experiment(
        cases, policy, model_id="test", shuffles=3, seed=seed, shares=SHARES, tuning_shuffles=2, slacks=SLACKS
    )


@pytest.fixture(scope="module")
def experiment(cases: tuple[Case, ...], policy: PolicyDocument) -> Experiment:
    return _small(cases, policy)


def _every_run(experiment: Experiment) -> list[Run]:
    return experiment.every_run()


def test_the_same_seed_gives_identical_results(
    cases: tuple[Case, ...], policy: PolicyDocument, experiment: Experiment
) -> None:
    again = _small(cases, policy)
    assert json.dumps(summary(again), sort_keys=True) == json.dumps(summary(experiment), sort_keys=True)


def test_another_seed_gives_other_orders_other_forecasts_and_other_results(
    cases: tuple[Case, ...], policy: PolicyDocument, experiment: Experiment
) -> None:
    other = _small(cases, policy, seed=8)
    assert other.levels[0].runs["fcfs"][0].order != experiment.levels[0].runs["fcfs"][0].order
    assert other.samples[0] != experiment.samples[0]
    assert summary(other)["levels"] != summary(experiment)["levels"]


def test_orders_are_permutations_and_tuning_never_replays_a_reported_order() -> None:
    reported = {arrival_order(1000, 2026, k, "test") for k in range(20)}
    tuning = {arrival_order(1000, 2026, k, "tune") for k in range(20)}
    assert all(sorted(order) == list(range(1000)) for order in reported | tuning)
    assert len(reported) == 20 and len(tuning) == 20
    assert not reported & tuning
    assert arrival_order(1000, 2026, 3) == arrival_order(1000, 2026, 3, "test")


def test_a_forecast_period_is_another_draw_of_the_population_not_the_replayed_order() -> None:
    sample = forecast_sample(1000, 2026, 0)
    assert sample == forecast_sample(1000, 2026, 0)  # from the seed and shuffle alone
    assert len(sample) == 1000 and all(0 <= i < 1000 for i in sample)
    # Drawn with replacement: rows repeat and others are missing, so it is not an arrival order.
    assert len(set(sample)) < 1000
    assert sorted(sample) != list(range(1000))
    assert list(sample) != list(arrival_order(1000, 2026, 0))
    # Tuning's forecasts are other draws than the reported runs'.
    assert {forecast_sample(1000, 2026, k, "tune") for k in range(5)}.isdisjoint(
        {forecast_sample(1000, 2026, k) for k in range(5)}
    )


def test_the_forecasts_do_not_depend_on_the_orders_replayed(
    cases: tuple[Case, ...], policy: PolicyDocument, experiment: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same experiment with every arrival order reversed: other runs, the very same forecasts.
    monkeypatch.setattr(
        experiment_module, "arrival_order", lambda n, seed, k, purpose="test": tuple(reversed(arrival_order(n, seed, k, purpose)))
    )
    reversed_orders = _small(cases, policy)
    assert reversed_orders.levels[0].runs["fcfs"][0].order != experiment.levels[0].runs["fcfs"][0].order
    assert reversed_orders.samples == experiment.samples
    assert reversed_orders.forecasts == experiment.forecasts
    # And each is built from its sample alone.
    target = market(cases, policy)
    for k, curves in enumerate(experiment.forecasts):
        assert curves == forecast(target, forecast_sample(len(cases), 7, k))


def test_the_forecast_has_the_actual_demand_as_its_expectation_not_its_value(
    cases: tuple[Case, ...], policy: PolicyDocument
) -> None:
    target = market(cases, policy)
    actual = demand(cases, policy)
    whole = [forecast(target, forecast_sample(len(cases), 2026, k))["individual"][0].exposure for k in range(30)]
    assert len(set(whole)) > 1  # another period, another demand
    assert sum(whole) / len(whole) == pytest.approx(actual["individual"][0], rel=0.05)
    # The forecast of a sample that is the whole period once each is the period's demand.
    exact = forecast(target, range(len(cases)))
    assert exact["individual"][0].exposure == actual["individual"][0]


def test_every_rule_sees_the_same_applications_in_the_same_order_under_the_same_budget(experiment: Experiment) -> None:
    for level in experiment.levels:
        for k in range(experiment.shuffles):
            runs = [level.runs[rule][k] for rule in level.runs]
            assert len({run.order for run in runs}) == 1
            assert len({run.offers for run in runs}) == 1
            assert all(run.budgets == level.budgets for run in runs)
        assert len({level.runs["fcfs"][k].order for k in range(experiment.shuffles)}) == experiment.shuffles


def test_the_replay_counts_the_share_of_the_period_gone_by_in_arrivals(
    cases: tuple[Case, ...], policy: PolicyDocument, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = market(cases, policy)
    budgeted = with_budget_share(policy, cases, 0.5)
    pacing = paced(budgeted, 0.1, forecast(target, forecast_sample(len(cases), 1, 0)))
    order = arrival_order(len(cases), 1, 0)
    seen: list[tuple[str, object]] = []
    decide = Book.post

    def spy(self: Book, request, terms):  # type: ignore[no-untyped-def]
        seen.append((request.application_id, terms))
        return decide(self, request, terms)

    monkeypatch.setattr(Book, "post", spy)
    replay(target, pacing, order)
    position = {cases[i].score.application_id: p for p, i in enumerate(order)}
    assert len(seen) == len(target.offers())
    for application, terms in seen:
        segment = next(c.segment for c in cases if c.score.application_id == application)
        assert terms == budget_terms(pacing, segment, NOW, elapsed=position[application] / len(cases))[1]


def test_first_come_first_served_never_paces_and_pacing_does_once_the_budget_binds(experiment: Experiment) -> None:
    for level in experiment.levels:
        assert all(run.paced == 0 for run in level.runs["fcfs"])
        if level.share < 1:
            assert all(run.paced > 0 for run in level.runs["pacing"])


def test_no_run_ever_takes_more_than_its_budget(experiment: Experiment, policy: PolicyDocument) -> None:
    programmes: dict[str, int] = {p.name: p.budget for p in policy.programmes}
    for run in _every_run(experiment):
        for segment, reserved in run.ledger.items():
            budget = run.budgets[segment]
            assert reserved.exposure <= budget.exposure
            assert reserved.el_fen <= budget.expected_loss * 100
        for name, part in run.programmes.items():
            assert part <= programmes[name]
        assert run.exposure_used <= 1 and run.el_used <= 1 and run.most_used <= 1
    assert experiment.most_used <= 1
    result = summary(experiment)
    assert result["budget_overspent"] is False and result["most_budget_used"] == experiment.most_used


def test_the_ledger_is_the_sum_of_the_grants_with_expected_loss_in_whole_fen(experiment: Experiment) -> None:
    for run in _every_run(experiment):
        for segment, reserved in run.ledger.items():
            grants = [g for g in run.grants if g.segment == segment]
            assert reserved.exposure == sum(g.limit for g in grants)
            assert reserved.el_fen == sum(math.floor(g.limit * g.el_rate * 100 + 0.5) for g in grants)


def test_a_tight_budget_binds_for_first_come_first_served(experiment: Experiment) -> None:
    for level in experiment.levels:
        if level.share < 1:
            for run in level.runs["fcfs"]:
                assert len(run.grants) < run.offers
                assert run.most_used > 0.9


def test_a_budget_as_large_as_demand_lets_first_come_first_served_open_every_offer(experiment: Experiment) -> None:
    full = next(level for level in experiment.levels if level.share == 1)
    for run in full.runs["fcfs"]:
        assert len(run.grants) == run.offers


def test_the_budget_share_scales_both_budgets_of_every_segment_and_keeps_the_period(
    cases: tuple[Case, ...], policy: PolicyDocument
) -> None:
    wanted = demand(cases, policy)
    assert wanted["individual"][0] > 0 and wanted["small_business"][0] > 0
    budgets: dict[str, Budget] = {str(s): b for s, b in with_budget_share(policy, cases, 0.4).budgets.items()}
    for segment, (exposure, loss) in wanted.items():
        assert budgets[segment].exposure == math.floor(0.4 * exposure)
        assert budgets[segment].expected_loss == math.floor(0.4 * loss)
        assert budgets[segment].period == policy.budgets[segment].period  # type: ignore[index]
    shared = with_budget_share(policy, cases, 0.4)
    assert shared.model_dump(exclude={"budgets"}) == policy.model_dump(exclude={"budgets"})
    with pytest.raises(ValueError):
        with_budget_share(policy, cases, 0)


def test_the_rules_differ_only_in_pacing(cases: tuple[Case, ...], policy: PolicyDocument) -> None:
    curves = forecast(market(cases, policy), forecast_sample(len(cases), 3, 0))
    rule = paced(policy, 0.2, curves)
    assert (rule.pacing.enabled, rule.pacing.slack, dict(rule.pacing.demand)) == (True, 0.2, curves)
    assert rule.model_dump(exclude={"pacing"}) == policy.model_dump(exclude={"pacing"})
    assert fcfs(policy).pacing.enabled is False
    assert fcfs(policy).model_dump(exclude={"pacing"}) == policy.model_dump(exclude={"pacing"})


def test_pacing_earns_a_higher_margin_per_unit_of_budget_than_first_come_first_served(experiment: Experiment) -> None:
    for level in experiment.levels:
        if level.share < 1:
            fcfs_rate = sum(r.expected_profit for r in level.runs["fcfs"]) / sum(r.exposure for r in level.runs["fcfs"])
            pacing_rate = sum(r.expected_profit for r in level.runs["pacing"]) / sum(r.exposure for r in level.runs["pacing"])
            assert pacing_rate > fcfs_rate


def test_hindsight_takes_the_best_margins_first(cases: tuple[Case, ...], policy: PolicyDocument) -> None:
    target = market(cases, policy)
    margins = [v.margin for v in (target.verdicts[i] for i in hindsight_order(target)) if isinstance(v, Offer)]
    assert margins == sorted(margins, reverse=True)
    run = replay(target, fcfs(with_budget_share(policy, cases, 0.5)), hindsight_order(target))
    assert [g.margin for g in run.grants] == sorted((g.margin for g in run.grants), reverse=True)


def test_replay_refuses_nothing_when_every_offer_is_closed_already(
    cases: tuple[Case, ...], policy: PolicyDocument
) -> None:
    closed = policy.model_copy(update={"cutoffs": {"individual": 10_000.0, "small_business": 10_000.0}})
    run = replay(market(cases, closed), closed, range(len(cases)))
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


def test_tuning_tries_the_policys_slack_and_chooses_the_best_acceptable_one(experiment: Experiment) -> None:
    tuning = experiment.tuning
    assert sorted(p.slack for p in tuning.points) == sorted({*SLACKS, experiment.slack})
    assert tuning.policy_point.slack == experiment.slack
    acceptable = [p for p in tuning.points if p.acceptable]
    for p in tuning.points:
        assert p.acceptable == (p.full_low is not None and p.full_low >= -0.01)
        assert p.full_low is not None and p.full_uplift is not None and p.full_low <= p.full_uplift
    if acceptable:
        assert tuning.chosen in acceptable
        assert tuning.chosen.mean_uplift == max(p.mean_uplift for p in acceptable)


def test_the_summary_states_the_uplift_per_share_and_checks_it_against_the_targets(experiment: Experiment) -> None:
    result = summary(experiment)
    assert set(result["uplift_vs_fcfs"]) == {"0.3", "0.6", "1"}
    for level in experiment.levels:
        key = f"{level.share:g}"
        fcfs_mean = sum(level.values("fcfs", "expected_profit")) / experiment.shuffles
        pacing_mean = sum(level.values("pacing", "expected_profit")) / experiment.shuffles
        assert result["uplift_vs_fcfs"][key] == pytest.approx(pacing_mean / fcfs_mean - 1)
        target = result["targets"]["shares"][key]
        assert target["target"] == (-0.01 if level.share == 1 else 0.10)
        assert target["met"] == (target["uplift"] >= target["target"])
    assert result["targets"]["met"] == all(t["met"] for t in result["targets"]["shares"].values())


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
    assert text.count("<!-- BEGIN pacing-verdict -->") == 1
    assert "--shuffles 3 --seed 7 --budget-share 0.3 --budget-share 0.6 --budget-share 1 --tuning-shuffles 2" in text
    assert "](img/pacing.png)" in text
    assert "Budget never overspent" in text


def test_a_small_run_through_the_command_ends_with_json(tmp_path: Path) -> None:
    # No time limit asserted here: speed is measured by benchmarks, not by timed unit tests.
    arguments = ["pacing", "--shuffles", "3", "--tuning-shuffles", "2", "--slack", "0", "--slack", "0.2"]
    result = CliRunner().invoke(app, [*arguments, "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert (data["shuffles"], data["budget_shares"], data["offers"]) == (3, [0.25, 0.5, 0.75, 1.0], 483)
    assert set(data["uplift_vs_fcfs"]) == {"0.25", "0.5", "0.75", "1"}
    assert all(isinstance(v, float) for v in data["uplift_vs_fcfs"].values())
    assert data["budget_overspent"] is False and data["most_budget_used"] <= 1
    assert {"fcfs", "pacing", "tuned"} == set(data["levels"][0]["rules"])
    assert (tmp_path / "pacing.md").exists() and (tmp_path / "img" / "pacing.png").stat().st_size > 0
    assert (tmp_path / "img" / "pacing-tuning.png").stat().st_size > 0
