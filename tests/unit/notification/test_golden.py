"""Golden files: the exact messages a customer reads, per category and language.

A change to a template, to the shared wording or to Babel's locale data shows here as a diff to
review. To accept the new renders, regenerate the files and review them with `git diff`:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/notification/test_golden.py

Each file holds the title, a blank line, and the body.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.notification.disclosure import Disclosure, render, render_movement, render_notice
from services.policy.care.reviewing import open_review
from services.policy.windows.decisions import decision_event, propose
from services.policy.windows.model import Posting
from services.policy.windows.rules import Offer
from shared.contracts import Decision, ReviewRequested, RuleThreshold
from shared.references import reference_of
from tests.unit.notification.factories import (
    DECIDED_AT,
    REVIEWED_ID,
    closed,
    delayed,
    drawdown,
    opened,
    review_concluded,
    review_opened,
)
from tests.unit.policy.factories import default_policy, score

GOLDEN = Path(__file__).parent / "golden"

def _threshold(rule: str, threshold: float, value: float | None = None, months: int | None = None) -> RuleThreshold:
    return RuleThreshold(rule=rule, threshold=threshold, value=value, period_months=months)


CASES: dict[str, Callable[[str], Decision]] = {
    "opened": lambda locale: opened(locale),
    "opened_income_cap": lambda locale: opened(locale, bound_by="income_cap"),
    "opened_income_cap_quarter": lambda locale: opened(locale, bound_by="income_cap", income_fraction=0.25),
    "opened_programme_cycle_score": lambda locale: opened(
        locale, segment="small_business", programme="small_business_boost", programme_boost=1.2, cycle_factor=0.9, score_disclosed=True
    ),
    "opened_on_review": lambda locale: opened(
        locale, trigger="review", bound_by="reviewer", reviewed_decision_id=REVIEWED_ID, review_note="Your savings were misread."
    ),
    "closed_credit": lambda locale: closed(locale),
    "closed_credit_knockout": lambda locale: closed(locale, reason="knockout_recent_overdue"),
    "closed_credit_overdue_threshold": lambda locale: closed(
        locale, reason="knockout_recent_overdue", threshold=_threshold("knockout_recent_overdue", 0, 1, 12)
    ),
    "closed_credit_inquiries": lambda locale: closed(
        locale, reason="knockout_inquiries", threshold=_threshold("knockout_inquiries", 3, 5, 3), score_disclosed=True
    ),
    "closed_credit_cutoff_score": lambda locale: closed(locale, threshold=_threshold("score_below_cutoff", 518, 480.0), score_disclosed=True),
    "closed_credit_small_business": lambda locale: closed(locale, segment="small_business", threshold=_threshold("score_below_cutoff", 511, 480.0)),
    "closed_strategy": lambda locale: closed(locale, "strategy", "region_paused"),
    "closed_strategy_suspended": lambda locale: closed(locale, "strategy", "customer_suspended", retry_after=None),
    "closed_strategy_suspended_until": lambda locale: closed(locale, "strategy", "customer_suspended", retry_after=DECIDED_AT + timedelta(days=14)),
    "closed_strategy_suspension_closes_window": lambda locale: closed(
        locale, "strategy", "customer_suspended", trigger="suspension", retry_after=None, closes_decision_id=REVIEWED_ID
    ),
    "closed_strategy_budget_on_review": lambda locale: closed(
        locale, "strategy", "budget_exhausted", trigger="review", reviewed_decision_id=REVIEWED_ID, review_note="Opened on review."
    ),
    "closed_system": lambda locale: closed(locale, "system", "scoring_failed"),
    "closed_system_maintenance": lambda locale: closed(locale, "system", "maintenance"),
    "closed_system_unreadable": lambda locale: closed(locale, "system", "application_invalid"),
    "closed_regulatory": lambda locale: closed(locale, "regulatory", "income_cap"),
    "closed_regulatory_quarter_small_business": lambda locale: closed(
        locale, "regulatory", "income_cap", segment="small_business", threshold=_threshold("income_cap", 0.25)
    ),
    "closed_regulatory_absolute_cap": lambda locale: closed(locale, "regulatory", "absolute_cap", threshold=_threshold("absolute_cap", 200_000)),
}
# Notices that are not decisions: told once each.
NOTICES: dict[str, Callable[[str], Disclosure]] = {
    "notice_delayed": lambda locale: render_notice(delayed(locale)),
    "notice_review_received": lambda locale: render_notice(review_opened(locale)),
    "notice_review_upheld": lambda locale: render_notice(review_concluded(locale, note="We checked your records again.")),
    "drawdown_approved": lambda locale: render_movement(drawdown(locale)),
    "drawdown_above_available": lambda locale: render_movement(drawdown(locale, "above_available")),
    "drawdown_window_closed": lambda locale: render_movement(drawdown(locale, "window_closed")),
    "drawdown_balance_cap": lambda locale: render_movement(drawdown(locale, "balance_cap")),
    "repayment_applied": lambda locale: render_movement(drawdown(locale, "repaid")),
}


# Decisions and notices taken a second either side of midnight on a month's (and a year's) last day in
# China time, through the policy's own rules: the dates a customer reads ("open until", "try again
# after", "a person will have decided by") are counted from the decision's time and shown in China time.
BEFORE_MIDNIGHT = datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC)  # 2026-12-31 23:59:59 China time
AFTER_MIDNIGHT = datetime(2026, 12, 31, 16, 0, 1, tzinfo=UTC)  # 2027-01-01 00:00:01 China time


def _at(moment: datetime, locale: str, *, budget_spent: bool = False) -> Decision:
    policy = default_policy()
    proposal = propose(score(at=moment), policy, moment)
    assert isinstance(proposal.verdict, Offer)
    granted = 0 if budget_spent else proposal.verdict.limit
    allocation = Posting(fresh=True, seq=1, granted=granted, refusal="budget_exhausted" if budget_spent else None, programme_part=0, available=0)
    return decision_event(proposal, allocation, policy, moment).model_copy(update={"locale": locale})


def _review_received_at(moment: datetime, locale: str) -> Disclosure:
    decision = _at(moment, locale, budget_spent=True)
    request = ReviewRequested(
        correlation_id="req", customer_id=decision.customer_id, reference=reference_of(decision.decision_id), statement="Please look again.",
        locale=locale, occurred_at=moment,  # type: ignore[arg-type]
    )  # fmt: skip
    return render_notice(open_review(request, decision, default_policy(), moment))


for _name, _moment in (("boundary_235959", BEFORE_MIDNIGHT), ("boundary_000001", AFTER_MIDNIGHT)):
    CASES[f"{_name}_opened"] = lambda locale, m=_moment: _at(m, locale)
    CASES[f"{_name}_closed_budget"] = lambda locale, m=_moment: _at(m, locale, budget_spent=True)
    NOTICES[f"{_name}_review_received"] = lambda locale, m=_moment: _review_received_at(m, locale)


def _rendered(case: str, locale: str) -> Disclosure:
    return NOTICES[case](locale) if case in NOTICES else render(CASES[case](locale))


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("case", sorted({*CASES, *NOTICES}))
def test_rendered_message_matches_its_golden_file(case: str, locale: str) -> None:
    disclosure = _rendered(case, locale)
    rendered = f"{disclosure.title}\n\n{disclosure.body}\n"
    path = GOLDEN / f"{case}.{locale}.txt"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with UPDATE_GOLDEN=1 and review it"
    assert rendered == path.read_text(encoding="utf-8")
