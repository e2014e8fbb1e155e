"""The budget rule: grants fit the budget, pacing prices the budget as it fills."""

from __future__ import annotations

from services.policy.budget import BudgetState, grant, required_margin, utilisation
from services.policy.document import Pacing
from services.policy.rules import Offer, evaluate
from tests.unit.policy.factories import NOW, default_policy, score


def _offer(**kwargs: object) -> Offer:
    offer = evaluate(score(**kwargs), default_policy(), NOW)  # type: ignore[arg-type]
    assert isinstance(offer, Offer)
    return offer


def test_an_empty_budget_grants_the_whole_offer() -> None:
    offer = _offer(grade="D", pd=0.18, income=100_000)
    result = grant(offer, BudgetState(), default_policy(), "individual")
    assert (result.limit, result.refusal) == (offer.limit, None)


def test_the_budget_bounds_the_limit_when_little_is_left() -> None:
    policy = default_policy(pacing__enabled=False)
    offer = _offer(grade="D", pd=0.18, income=100_000)
    cap = policy.budgets["individual"].exposure
    result = grant(offer, BudgetState(reserved_exposure=cap - 5_000), policy, "individual")
    assert (result.limit, result.bound_by) == (5_000, "segment_budget")


def test_a_spent_budget_refuses_as_exhausted() -> None:
    policy = default_policy(pacing__enabled=False)
    cap = policy.budgets["individual"].exposure
    result = grant(_offer(), BudgetState(reserved_exposure=cap - 100), policy, "individual")
    assert (result.limit, result.refusal) == (0, "budget_exhausted")


def test_the_expected_loss_budget_binds_too() -> None:
    policy = default_policy(pacing__enabled=False)
    offer = _offer(grade="D", pd=0.18, income=100_000)
    loss_cap = policy.budgets["individual"].expected_loss
    left = 1_000.0
    result = grant(offer, BudgetState(reserved_el=loss_cap - left), policy, "individual")
    assert result.limit * offer.el_rate <= left
    assert result.limit > 0


def test_pacing_refuses_thin_margins_as_the_budget_fills_but_not_rich_ones() -> None:
    policy = default_policy()
    cap = policy.budgets["individual"].exposure
    thin = _offer(grade="E", pd=0.30)  # margin barely positive
    rich = _offer(grade="A", pd=0.01)
    nearly_full = BudgetState(reserved_exposure=int(cap * 0.8))
    assert grant(thin, BudgetState(), policy, "individual").refusal is None
    assert grant(thin, nearly_full, policy, "individual").refusal == "budget_paced"
    assert grant(rich, nearly_full, policy, "individual").refusal is None


def test_the_required_margin_rises_with_utilisation() -> None:
    pacing = Pacing(max_margin=0.1, steepness=2)
    assert required_margin(0.0, pacing) == 0
    assert required_margin(0.5, pacing) < required_margin(0.9, pacing) <= 0.1
    assert required_margin(0.9, Pacing(enabled=False)) == 0


def test_utilisation_is_the_larger_of_exposure_and_loss_shares() -> None:
    budget = default_policy().budgets["individual"]
    state = BudgetState(reserved_exposure=budget.exposure // 4, reserved_el=budget.expected_loss / 2)
    assert utilisation(state, budget) == 0.5


def test_a_programme_out_of_budget_loses_its_boost_not_the_window() -> None:
    policy = default_policy(pacing__enabled=False)
    offer = _offer(grade="D", pd=0.18, income=100_000, segment="small_business")
    programme = policy.programmes[0]
    result = grant(offer, BudgetState(programme_reserved=programme.budget), policy, "small_business")
    assert result.limit == offer.limit - offer.programme_part
    assert result.programme_part == 0
