"""The portfolio budget rule: how much of an offer the segment's budget grants. Pure.

The Redis store runs the same rule atomically in Lua (``redis_limits.py``); a test holds the two to
the same answers. Utilisation is the larger of the exposure and expected-loss shares already
reserved. With pacing on, an offer must earn at least the budget's shadow price

    required margin(u) = max_margin x u ** steepness

so early, thin-margin windows cannot use up the budget that later, better applicants need.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.policy.document import Budget, Pacing, PolicyDocument
from services.policy.rules import Offer, round_down

__all__ = ["BudgetState", "Grant", "grant", "required_margin", "utilisation"]


@dataclass(frozen=True, slots=True)
class BudgetState:
    """What is reserved now: the segment's exposure and expected loss, and the programme's boost."""

    reserved_exposure: int = 0
    reserved_el: float = 0.0
    programme_reserved: int = 0


@dataclass(frozen=True, slots=True)
class Grant:
    limit: int  # 0 when refused
    bound_by: str
    refusal: str | None  # budget_paced | budget_exhausted
    programme_part: int
    budget_available: int


def utilisation(state: BudgetState, budget: Budget) -> float:
    exposure = state.reserved_exposure / budget.exposure if budget.exposure else 1.0
    loss = state.reserved_el / budget.expected_loss if budget.expected_loss else 1.0
    return min(1.0, max(exposure, loss, 0.0))


def required_margin(u: float, pacing: Pacing) -> float:
    if not pacing.enabled:
        return 0.0
    return float(pacing.max_margin * max(0.0, min(1.0, u)) ** pacing.steepness)


def grant(offer: Offer, state: BudgetState, policy: PolicyDocument, segment: str) -> Grant:
    budget = policy.budgets[segment]  # type: ignore[index]
    step = policy.limits.round_to
    room_exposure = max(0, budget.exposure - state.reserved_exposure)
    room_loss = max(0.0, budget.expected_loss - state.reserved_el) / offer.el_rate if offer.el_rate > 0 else float(room_exposure)
    available = round_down(min(room_exposure, room_loss), step)
    if offer.margin < required_margin(utilisation(state, budget), policy.pacing):
        return Grant(0, "segment_budget", "budget_paced", 0, available)

    limit = offer.limit
    part = offer.programme_part
    programme = policy.programme_for(segment)
    if programme is not None and part > 0:
        room = max(0, programme.budget - state.programme_reserved)
        if part > room:
            limit -= part - room
            part = room
    limit = round_down(min(limit, available), step)
    if limit < policy.limits.min_limit:
        return Grant(0, "segment_budget", "budget_exhausted", 0, available)
    part = min(part, limit)
    bound_by = "segment_budget" if limit < offer.limit and limit == available else offer.basis.bound_by
    return Grant(limit, bound_by, None, part, available)
