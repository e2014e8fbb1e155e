"""Plain values for policy tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.policy.control.document import PolicyDocument, load_policy
from services.policy.windows.book import budget_key
from services.policy.windows.decisions import budget_period
from shared.clock import Clock
from shared.contracts import ApplicationFacts, BureauSignals, Reason, RecourseAction, ScoreComputed, WindowOpened
from shared.settings import Settings
from tests.clocks import NOW

__all__ = ["NOW", "charged_to", "default_policy", "score", "this_period"]


def default_policy(**changes: Any) -> PolicyDocument:
    policy = load_policy(Settings().policy_path)
    if not changes:
        return policy
    data = policy.model_dump()
    for dotted, value in changes.items():
        target = data
        *path, last = dotted.split("__")
        for part in path:
            target = target[part]
        target[last] = value
    return PolicyDocument.model_validate(data)


def this_period(at: datetime | Clock, segment: str = "individual", policy: PolicyDocument | None = None) -> str:
    """The book key of the segment's budget at `at` (a moment, or a clock's now): the default
    policy's budgets are monthly, in China time."""
    moment = at if isinstance(at, datetime) else at.now()
    return budget_key(segment, budget_period(policy or default_policy(), segment, moment))


def charged_to(opened: WindowOpened) -> str:
    """The book key of the budget a window was charged to, as its decision says (the period of the
    moment it was decided)."""
    return budget_key(opened.segment or "unknown", opened.basis.budget_period or "")


def score(
    *,
    points: float = 600.0,
    pd: float = 0.04,
    grade: str = "A",
    segment: str = "individual",
    income: int = 120_000,
    overdue: int = 0,
    inquiries: int = 0,
    region: str = "CN-SH",
    channel: str = "app",
    outcome: str = "scored",
    application_id: str = "app_unit_000001",
    customer_id: str = "cus_unit00000001",
    failure: str | None = None,
    at: datetime = NOW,
) -> ScoreComputed:
    return ScoreComputed(
        correlation_id=application_id,
        producer="test",
        occurred_at=at,
        application_id=application_id,
        customer_id=customer_id,
        facts=ApplicationFacts(
            segment=segment,  # type: ignore[arg-type]
            region=region,
            channel=channel,
            annual_income=income,
            requested_amount=5000,
            bureau=BureauSignals(overdue_count_12m=overdue, inquiries_3m=inquiries),
        ),
        outcome=outcome,  # type: ignore[arg-type]
        failure=None if outcome == "scored" else (failure or "scoring_error: ValueError"),
        model_id="german-woe@1+test",
        points=points if outcome == "scored" else None,
        pd=pd if outcome == "scored" else None,
        grade=grade if outcome == "scored" else None,
        reasons=(Reason(code="R_CHECKING_ACCOUNT", characteristic="checking_account", points_lost=30.0),),
        recourse=(
            RecourseAction(
                code="A_SHORTER_DURATION", characteristic="duration_months", current="48", target="24", points_gain=12.0
            ),
        ),
    )
