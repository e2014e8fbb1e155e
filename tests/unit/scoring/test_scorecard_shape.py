"""The committed scorecard keeps the shape the domain expects."""

from __future__ import annotations

import itertools

from services.scoring.characteristics import CategoricalCharacteristic, NumericCharacteristic
from services.scoring.scorecard import Scorecard


def _points_along(scorecard: Scorecard, name: str, values: list[object]) -> list[float]:
    table = next(c for c in scorecard.characteristics if c.name == name)
    return [table.points[table.locate(v)] for v in values]


def test_longer_duration_never_scores_more(scorecard: Scorecard) -> None:
    points = _points_along(scorecard, "duration_months", list(range(1, 121)))
    assert all(a >= b for a, b in itertools.pairwise(points))
    assert points[0] > points[-1]


def test_older_applicants_never_score_less(scorecard: Scorecard) -> None:
    points = _points_along(scorecard, "age_years", list(range(18, 111)))
    assert all(a <= b for a, b in itertools.pairwise(points))


def test_more_savings_and_a_better_checking_balance_never_score_less(scorecard: Scorecard) -> None:
    savings = _points_along(scorecard, "savings", ["lt_100", "100_to_500", "500_to_1000", "ge_1000"])
    checking = _points_along(scorecard, "checking_account", ["lt_0", "0_to_200", "ge_200"])
    assert all(a <= b for a, b in itertools.pairwise(savings))
    assert all(a <= b for a, b in itertools.pairwise(checking))


def test_every_known_code_of_a_categorical_characteristic_has_a_bin(scorecard: Scorecard) -> None:
    for table in scorecard.characteristics:
        if isinstance(table, CategoricalCharacteristic):
            assert len(table.bin_of) >= 2
            assert set(table.bin_of.values()) == set(range(table.n_bins))
        else:
            assert isinstance(table, NumericCharacteristic) and table.n_bins >= 2
