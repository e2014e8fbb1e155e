"""Fixed window decisions for notification tests: every id and time pinned, so renders are stable."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.contracts import (
    DecisionDelayed,
    DrawdownApproved,
    DrawdownRefused,
    LimitBasis,
    Reason,
    RecourseAction,
    RepaymentApplied,
    ReviewConcluded,
    ReviewOpened,
    WindowClosed,
    WindowOpened,
)

DECIDED_AT = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)  # 12:00 China time
DECISION_ID = uuid.UUID("3f2a9c1b-77d0-4e5a-9b61-0c2d4e6f8a10")


def _common(locale: str, **changes: Any) -> dict[str, Any]:
    common: dict[str, Any] = {
        "event_id": DECISION_ID,
        "correlation_id": "app_gold_000001",
        "producer": "policy",
        "occurred_at": DECIDED_AT,
        "decision_id": DECISION_ID,
        "decision_seq": 3,
        "application_id": "app_gold_000001",
        "customer_id": "cus_gold00000001",
        "segment": "individual",
        "locale": locale,
        "policy_version": "default@7",
        "model_id": "german-woe@1+3f2a9c1b",
    }
    common.update(changes)
    return common


def opened(locale: str = "zh-CN", **changes: Any) -> WindowOpened:
    basis = LimitBasis(
        cycle_factor=changes.pop("cycle_factor", 1.0),
        programme=changes.pop("programme", None),
        programme_boost=changes.pop("programme_boost", 1.0),
        income_fraction=changes.pop("income_fraction", 1 / 3),
        absolute_cap=200_000,
        bound_by=changes.pop("bound_by", "risk_grade"),
    )
    return WindowOpened(
        **_common(locale, **changes),
        limit=30_000,
        apr=0.1095,
        daily_rate=0.0003,
        valid_until=DECIDED_AT + timedelta(days=30),
        grade="C",
        pd=0.08,
        points=540.2,
        expected_loss=1080.0,
        basis=basis,
    )


REASONS = (
    Reason(code="R_CHECKING_ACCOUNT", characteristic="checking_account", points_lost=41.0),
    Reason(code="R_CREDIT_HISTORY", characteristic="credit_history", points_lost=30.5),
    Reason(code="R_DURATION_MONTHS", characteristic="duration_months", points_lost=22.0),
    Reason(code="R_SAVINGS", characteristic="savings", points_lost=18.0),
)
RECOURSE = (
    RecourseAction(
        code="A_CHECKING_BALANCE", characteristic="checking_account", current="lt_0", target=">= 200", points_gain=35.0
    ),
    RecourseAction(
        code="A_SHORTER_DURATION", characteristic="duration_months", current="48", target="24", points_gain=15.0
    ),
    RecourseAction(
        code="A_LOWER_AMOUNT", characteristic="credit_amount", current="9000", target="3999", points_gain=6.0
    ),
)


def closed(
    locale: str = "zh-CN", category: str = "credit", reason: str = "score_below_cutoff", **changes: Any
) -> WindowClosed:
    fields: dict[str, Any] = {"category": category, "reason": reason}
    if category == "credit":
        fields.update(reasons=REASONS, recourse=RECOURSE, grade="F", pd=0.31, points=480.0)
    if category in ("strategy", "system"):
        fields["retry_after"] = DECIDED_AT + (timedelta(hours=24) if category == "strategy" else timedelta(minutes=30))
    if category == "system":
        changes.setdefault("model_id", None)
    fields.update(
        {k: changes.pop(k) for k in list(changes) if k in WindowClosed.model_fields and k not in _common(locale)}
    )
    return WindowClosed(**_common(locale, **changes), **fields)


def drawdown(locale: str = "zh-CN", outcome: str = "approved", **changes: Any) -> DrawdownApproved | DrawdownRefused | RepaymentApplied:
    """A drawdown outcome (approved, above_available, window_closed, balance_cap) or a repayment (repaid)."""
    base: dict[str, Any] = {
        "event_id": uuid.UUID("6a7d1f3e-8c59-5b1a-9e3f-1d2c3b4a5f60"),
        "correlation_id": "dd_gold_000001",
        "occurred_at": datetime(2026, 11, 28, 4, 0, tzinfo=UTC),
        "customer_id": "cus_gold_0000001",
        "amount": 5_000,
        "locale": locale,
        "balance_seq": 3,
    }
    if outcome == "repaid":
        return RepaymentApplied(**{**base, "repayment_id": "rp_gold_000001", "amount": 6_000, "applied": 6_000, "balance": 2_000, **changes})
    common = {**base, "drawdown_id": "dd_gold_000001", "limit": 30_000, "policy_version": "default@2", "application_id": "app_gold_000001"}
    if outcome == "approved":
        return DrawdownApproved(**{**common, "balance": 12_000, "available": 18_000, **changes})
    refusals = {
        "above_available": {"category": "credit", "balance": 28_000, "available": 2_000},
        "window_closed": {"category": "credit", "window_reason": "score_below_cutoff", "limit": 0, "balance": 0, "available": 0},
        "balance_cap": {"category": "regulatory", "balance": 17_000, "available": 3_000},
    }
    return DrawdownRefused(**{**common, "reason": outcome, **refusals[outcome], **changes})


REVIEWED_ID = uuid.UUID("0f2a9c1b-77d0-4e5a-9b61-0c2d4e6f8a10")
NOTICE_ID = uuid.UUID("5e1d7c3a-0b9f-4a2e-8c61-2f4e6a8b0c12")


def delayed(locale: str = "zh-CN") -> DecisionDelayed:
    return DecisionDelayed(
        event_id=NOTICE_ID, correlation_id="app_gold_000001", producer="policy", occurred_at=DECIDED_AT + timedelta(minutes=2),
        application_id="app_gold_000001", customer_id="cus_gold00000001", decision_id=DECISION_ID, locale=locale,  # type: ignore[arg-type]
        waiting_since=DECIDED_AT, cause="ConnectionError: Redis away",
    )  # fmt: skip


def review_opened(locale: str = "zh-CN") -> ReviewOpened:
    return ReviewOpened(
        event_id=NOTICE_ID, correlation_id="app_gold_000001", producer="policy", occurred_at=DECIDED_AT, review_id=NOTICE_ID,
        reference="CW-7WN9-R6VQ-T175", decision_id=DECISION_ID, application_id="app_gold_000001", customer_id="cus_gold00000001",
        locale=locale, requested_at=DECIDED_AT, respond_by=DECIDED_AT + timedelta(days=7), reviewed_outcome="closed",  # type: ignore[arg-type]
        reviewed_category="credit",
    )  # fmt: skip


def review_concluded(locale: str = "zh-CN", outcome: str = "upheld", note: str = "") -> ReviewConcluded:
    return ReviewConcluded(
        event_id=NOTICE_ID, correlation_id="app_gold_000001", producer="policy", occurred_at=DECIDED_AT + timedelta(days=2),
        review_id=NOTICE_ID, reference="CW-7WN9-R6VQ-T175", decision_id=DECISION_ID, application_id="app_gold_000001",
        customer_id="cus_gold00000001", locale=locale, outcome=outcome, note=note, decided_by="ops_lin",  # type: ignore[arg-type]
        new_decision_id=None if outcome == "upheld" else REVIEWED_ID, reviewed_outcome="closed", reviewed_category="credit",
    )  # fmt: skip
