"""`credit.windows` is kept forever: an opened window carries the rule that bound its limit, never an
amount computed from the customer's income."""

from __future__ import annotations

import json

import pytest

from services.policy.windows.decisions import decision_event, propose
from services.policy.windows.model import Posting
from shared.contracts import WindowOpened
from shared.wire import Record, decode, encode
from tests.clocks import NOW
from tests.unit.policy.factories import default_policy, score


def _opened(income: int, **policy_changes: object) -> WindowOpened:
    policy = default_policy(**policy_changes)
    proposal = propose(score(income=income, grade="A", pd=0.04), policy, NOW)
    limit = proposal.verdict.limit  # type: ignore[union-attr]
    decision = decision_event(proposal, Posting(fresh=True, seq=1, granted=limit, refusal=None, programme_part=0, available=10**8), policy, NOW)
    assert isinstance(decision, WindowOpened)
    return decision


def _numbers(value: object) -> set[float]:
    if isinstance(value, dict):
        return set().union(*(_numbers(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_numbers(v) for v in value)) if value else set()
    return {float(value)} if isinstance(value, (int, float)) and not isinstance(value, bool) else set()


@pytest.mark.parametrize("income", [90_000, 120_000, 333_300, 1_000_000])
def test_an_opened_window_carries_no_number_derived_from_income_but_the_limit(income: int) -> None:
    decision = _opened(income, limits__cap_at_requested=False)
    body = json.loads(decision.model_dump_json())
    assert "income_cap" not in body["basis"] and "grade_limit" not in body["basis"]
    assert body["basis"]["income_fraction"] == pytest.approx(1 / 3)
    policy = default_policy()
    income_figures = {income * f for f in (policy.regulatory.income_fraction, *(g.income_multiple for g in policy.grades.values()))}
    leaked = {n for n in _numbers(body) if any(abs(n - figure) < policy.limits.round_to for figure in income_figures)}
    assert leaked <= {float(decision.limit)}, f"income can be read from {leaked}"


def test_two_customers_whose_limit_a_fixed_cap_set_have_the_same_basis_whatever_their_income() -> None:
    rich, richer = _opened(900_000, limits__cap_at_requested=False), _opened(5_000_000, limits__cap_at_requested=False)
    assert rich.basis.bound_by == richer.basis.bound_by == "absolute_cap"
    assert rich.basis == richer.basis and rich.limit == richer.limit


def test_windows_are_schema_version_2_and_version_1_is_still_read() -> None:
    decision = _opened(120_000)
    message = encode(decision)
    assert message.headers["schema_version"] == "2"
    old = json.loads(message.value)
    old["schema_version"] = 1
    old["basis"] |= {"grade_limit": 40_000, "income_cap": 40_000}
    old.pop("income_fraction", None)
    read = decode(Record("credit.windows", 0, 0, message.key, json.dumps(old).encode(), [("event_type", b"WindowOpened")]), (WindowOpened,))
    assert isinstance(read, WindowOpened) and read.schema_version == 1 and read.limit == decision.limit
    assert "income_cap" not in read.basis.model_dump()
