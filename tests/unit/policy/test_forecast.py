"""The demand curve pacing reads, built from an earlier period's offers."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from services.policy.control.document import DemandPoint, Pacing
from services.policy.windows.book import required_margin
from services.policy.windows.forecast import demand_by_segment, demand_curve, total_demand
from services.policy.windows.model import BudgetTerms, Reserved

OFFERS = [(0.03, 10_000, 200.0), (0.01, 5_000, 300.0), (0.02, 20_000, 100.0), (0.03, 1_000, 10.0)]


def _brute(offers: list[tuple[float, int, float]], margin: float) -> tuple[int, int]:
    chosen = [o for o in offers if o[0] >= margin]
    return round(sum(o[1] for o in chosen)), round(sum(o[2] for o in chosen))


def test_every_point_is_the_demand_of_the_offers_earning_at_least_its_margin() -> None:
    curve = demand_curve(OFFERS)
    assert [p.margin for p in curve] == [0.01, 0.02, 0.03]
    assert [(p.exposure, p.expected_loss) for p in curve] == [(36_000, 610), (31_000, 310), (11_000, 210)]


def test_a_curve_of_random_offers_validates_and_matches_brute_force() -> None:
    rng = random.Random(5)
    offers = [(rng.uniform(0.001, 0.06), rng.randrange(5, 2000) * 100, rng.uniform(0, 3000)) for _ in range(500)]
    curve = demand_curve(offers, points=30)
    assert 1 < len(curve) <= 30
    Pacing(demand={"individual": curve})  # margins strictly ascending, demand non-increasing
    assert curve[0].exposure == sum(o[1] for o in offers)  # the first point is the whole demand
    for point in curve:
        assert (point.exposure, point.expected_loss) == _brute(offers, point.margin)


def test_the_grid_takes_quantiles_of_the_margins_when_there_are_more_than_the_points() -> None:
    offers = [(0.001 * (i + 1), 100, 1.0) for i in range(100)]
    curve = demand_curve(offers, points=4)
    assert [p.margin for p in curve] == [0.001, 0.026, 0.051, 0.076]
    assert [p.exposure for p in curve] == [10_000, 7_500, 5_000, 2_500]


def test_scale_multiplies_the_demand_and_keeps_the_margins() -> None:
    plain, doubled = demand_curve(OFFERS), demand_curve(OFFERS, scale=2.0)
    assert [p.margin for p in doubled] == [p.margin for p in plain]
    assert [p.exposure for p in doubled] == [2 * p.exposure for p in plain]


def test_no_offers_no_curve_and_bad_arguments_are_refused() -> None:
    assert demand_curve([]) == ()
    with pytest.raises(ValueError):
        demand_curve(OFFERS, points=0)
    with pytest.raises(ValueError):
        demand_curve(OFFERS, scale=0)
    with pytest.raises(ValueError):
        demand_curve(OFFERS, scale=math.nan)


def test_curves_by_segment_leave_out_segments_without_offers() -> None:
    curves = demand_by_segment([("individual", *offer) for offer in OFFERS] + [("small_business", 0.02, 500, 5.0)])
    assert set(curves) == {"individual", "small_business"}
    assert curves["small_business"] == (DemandPoint(margin=0.02, exposure=500, expected_loss=5),)
    assert total_demand(curves) == {"individual": (36_000, 610), "small_business": (500, 5)}


def test_pacing_on_the_curve_keeps_the_budget_for_the_better_margins() -> None:
    curve = demand_curve(OFFERS)
    terms = BudgetTerms(
        exposure=11_000,
        expected_loss=1_000,
        pacing=True,
        demand=tuple((p.margin, float(p.exposure), float(p.expected_loss)) for p in curve),
    )
    # At the start only the best offers' demand fits the budget: the required margin is theirs.
    assert required_margin(terms, Reserved()) == 0.03
    # With the whole period gone by, nothing more is to come: every offer may open.
    assert required_margin(replace(terms, elapsed=1.0), Reserved()) == -math.inf
