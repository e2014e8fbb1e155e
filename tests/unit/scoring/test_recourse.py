from __future__ import annotations

import itertools

import pytest

from devtools.germancredit import GermanRow
from services.scoring.characteristics import CategoricalCharacteristic, NumericCharacteristic
from services.scoring.recourse import LEVERS, Change, Lower, Planner, Raise, SwitchTo, applied, plan
from services.scoring.scorecard import Scorecard
from shared.contracts import Applicant

NEVER = {"age_years", "credit_history", "job", "housing", "dependents"}
ACTIONABLE = {lever.characteristic for lever in LEVERS}


def _tables(scorecard: Scorecard) -> dict[str, NumericCharacteristic | CategoricalCharacteristic]:
    return {t.name: t for t in scorecard.characteristics}


def _below_cutoff(scorecard: Scorecard, rows: tuple[GermanRow, ...]) -> list[tuple[Applicant, str, float]]:
    cases = []
    for row in rows:
        for segment in ("individual", "small_business"):
            points = scorecard.points(row.applicant)
            if points < scorecard.cutoff(segment):
                cases.append((row.applicant, segment, points))
    return cases


def test_recourse_reaches_the_cutoff_when_applied(scorecard: Scorecard, rows: tuple[GermanRow, ...]) -> None:
    tables = _tables(scorecard)
    planned = 0
    for applicant, segment, points in _below_cutoff(scorecard, rows):
        cutoff = scorecard.cutoff(segment)
        changes = plan(applicant, tables, cutoff - points)
        result = scorecard.score(applicant, segment)
        assert result.recourse == tuple(c.as_action() for c in changes)
        assert result.recourse_target_points == cutoff
        if changes:
            planned += 1
            after = scorecard.points(applied(applicant, changes))
            assert after >= cutoff
            assert after - points == pytest.approx(sum(c.points_gain for c in changes), abs=1e-9)
    assert planned > 200


def test_recourse_never_touches_age_history_job_housing_or_dependents(
    scorecard: Scorecard, rows: tuple[GermanRow, ...]
) -> None:
    seen: set[str] = set()
    for applicant, segment, _ in _below_cutoff(scorecard, rows):
        for action in scorecard.score(applicant, segment).recourse:
            seen.add(action.characteristic)
            assert action.characteristic in ACTIONABLE
            assert action.characteristic not in NEVER
            assert action.points_gain > 0
    assert len(seen) >= 4


def test_no_smaller_set_of_changes_reaches_the_cutoff(scorecard: Scorecard, rows: tuple[GermanRow, ...]) -> None:
    tables = _tables(scorecard)
    for applicant, segment, points in _below_cutoff(scorecard, rows)[::7]:
        deficit = scorecard.cutoff(segment) - points
        changes = plan(applicant, tables, deficit)
        best_gain_per_lever = []
        for lever in LEVERS:
            if lever.characteristic not in tables:
                continue
            table = tables[lever.characteristic]
            value = getattr(applicant, lever.characteristic)
            if value is None:
                continue
            now = table.points[table.locate(value)]
            gains = [table.points[table.locate(c.value)] - now for c in lever.candidates(value, table)]
            best_gain_per_lever.append(max([g for g in gains if g > 0], default=0.0))
        fewer = len(changes) - 1 if changes else len(best_gain_per_lever)
        for subset in itertools.combinations(best_gain_per_lever, max(fewer, 0)):
            assert sum(subset) < deficit


def test_nothing_to_do_at_or_above_the_cutoff(scorecard: Scorecard, rows: tuple[GermanRow, ...]) -> None:
    above = [r for r in rows if scorecard.points(r.applicant) >= scorecard.cutoff("individual")]
    assert above
    for row in above[:50]:
        result = scorecard.score(row.applicant, "individual")
        assert result.recourse == () and result.recourse_target_points is None


def test_unreachable_cutoff_gives_no_recourse(scorecard: Scorecard, rows: tuple[GermanRow, ...]) -> None:
    assert plan(rows[0].applicant, _tables(scorecard), deficit=10_000.0) == ()


def test_missing_characteristics_are_never_changed(scorecard: Scorecard) -> None:
    applicant = Applicant(duration_months=None, credit_amount=None, savings=None, checking_account="lt_0")
    changes = plan(applicant, _tables(scorecard), deficit=1.0)
    assert {c.characteristic for c in changes} <= {"checking_account"}


def _toy_tables() -> dict[str, NumericCharacteristic | CategoricalCharacteristic]:
    duration = NumericCharacteristic(
        name="duration_months", splits=(12.5, 24.5, 36.5), points=(40.0, 30.0, 20.0, 10.0, 25.0, 25.0)
    )
    savings = CategoricalCharacteristic(
        name="savings",
        bin_of={"ge_1000": 0, "500_to_1000": 0, "100_to_500": 1, "lt_100": 2},
        points=(35.0, 20.0, 5.0, 18.0, 18.0),
    )
    debtors = CategoricalCharacteristic(
        name="other_debtors", bin_of={"guarantor": 0, "co_applicant": 1, "none": 1}, points=(30.0, 10.0, 15.0, 15.0)
    )
    return {"duration_months": duration, "savings": savings, "other_debtors": debtors}


def test_one_change_is_preferred_to_two_even_if_it_moves_further() -> None:
    applicant = Applicant(duration_months=48, savings="lt_100", other_debtors="none")
    changes = plan(applicant, _toy_tables(), deficit=28.0)
    assert [(c.characteristic, c.target) for c in changes] == [("savings", "500")]
    assert changes[0].points_gain == 30.0


def test_the_smallest_sufficient_change_is_chosen() -> None:
    applicant = Applicant(duration_months=48, savings="ge_1000", other_debtors="guarantor")
    changes = plan(applicant, _toy_tables(), deficit=9.0)
    assert [(c.characteristic, c.current, c.target, c.value, c.steps) for c in changes] == [
        ("duration_months", "48", "36", 36, 1)
    ]
    bigger = plan(applicant, _toy_tables(), deficit=15.0)
    assert [(c.target, c.steps) for c in bigger] == [("24", 2)]


def test_shorter_duration_targets_are_the_largest_whole_values_of_better_bins() -> None:
    table = _toy_tables()["duration_months"]
    lever = Lower("duration_months", "A_SHORTER_DURATION", floor=1)
    assert [(c.value, c.steps) for c in lever.candidates(48, table)] == [(36, 1), (24, 2), (12, 3)]
    assert list(lever.candidates(10, table)) == []


def test_ladders_climb_only_upwards_and_switches_only_to_targets() -> None:
    tables = _toy_tables()
    savings = Raise(
        "savings", "A_BUILD_SAVINGS", ("lt_100", "100_to_500", "500_to_1000", "ge_1000"), {"ge_1000": "1000"}
    )
    assert [c.value for c in savings.candidates("lt_100", tables["savings"])] == ["ge_1000"]
    assert list(savings.candidates("ge_1000", tables["savings"])) == []
    debtors = SwitchTo("other_debtors", "A_ADD_GUARANTOR", ("guarantor", "co_applicant"))
    assert [c.value for c in debtors.candidates("guarantor", tables["other_debtors"])] == ["co_applicant"]


def test_changes_come_with_the_largest_gain_first() -> None:
    applicant = Applicant(duration_months=48, savings="lt_100", other_debtors="none")
    changes = plan(applicant, _toy_tables(), deficit=55.0)
    assert len(changes) == 2
    gains = [c.points_gain for c in changes]
    assert gains == sorted(gains, reverse=True)
    assert isinstance(changes[0], Change)


def test_a_planner_kept_across_applicants_plans_what_a_fresh_one_does(scorecard: Scorecard, rows: tuple[GermanRow, ...]) -> None:
    # The scorecard keeps one planner, which works each lever's options out once per value (per bin
    # for a numeric lever): every plan must be the one worked out from scratch.
    tables = _tables(scorecard)
    kept = Planner(tables)
    cases = _below_cutoff(scorecard, rows)
    for applicant, segment, points in cases + cases[::-1]:
        deficit = scorecard.cutoff(segment) - points
        assert kept.plan(applicant, deficit) == plan(applicant, tables, deficit)
        assert kept.plan(applicant, deficit / 2) == plan(applicant, tables, deficit / 2)
