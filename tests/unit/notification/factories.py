"""Fixed window decisions for notification tests: every id and time pinned, so renders are stable."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.contracts import (
    DecisionDelayed,
    DrawdownApproved,
    DrawdownRefused,
    Instalment,
    InstalmentDueSoon,
    InstalmentOverdue,
    LimitBasis,
    LoanBooked,
    LoanEvent,
    OverdueCured,
    Reason,
    RecourseAction,
    RepaymentAllocation,
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
    if outcome in ("repaid_allocated", "repaid_overpaid"):
        over = outcome == "repaid_overpaid"
        allocations = (
            RepaymentAllocation(loan_id="dd_gold_000001", instalment=1, interest_fen=9_300, principal_fen=330_185, due=True),
            RepaymentAllocation(loan_id="dd_gold_000001", instalment=2, interest_fen=0, principal_fen=669_815 if over else 260_515, due=False),
        )
        paid = 9_300 + sum(a.principal_fen for a in allocations)
        return RepaymentApplied(**{
            **base, "repayment_id": "rp_gold_000002", "amount": 12_000 if over else 6_000, "applied": paid // 100,
            "balance": 0 if over else 4_093, "balance_fen": 0 if over else 409_300, "interest_fen": 9_300, "principal_fen": paid - 9_300,
            "credit_fen": 1_200_000 - paid if over else 0, "credit_balance_fen": 1_200_000 - paid if over else 0, "allocations": allocations,
            **changes,
        })  # fmt: skip
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


LOAN_ID = "dd_gold_000001"


def _instalment(number: int, due: date, principal: int, interest: int) -> Instalment:
    pay_by = datetime(due.year, due.month, due.day, tzinfo=UTC) + timedelta(hours=16)  # the end of the due date, China time
    return Instalment(number=number, due_date=due, pay_by=pay_by, principal_fen=principal, interest_fen=interest, amount_fen=principal + interest)


def loan_event(locale: str = "zh-CN", kind: str = "booked", **changes: Any) -> LoanEvent:
    """A loan booked (with a credit balance used: `booked_credit`), a reminder, a miss that closes the
    window, 30 days past due, or a cure."""
    base: dict[str, Any] = {
        "event_id": uuid.UUID("8b1e2c3d-4f50-5a6b-8c7d-9e0f1a2b3c4d"), "correlation_id": "dd_gold_000001", "producer": "policy",
        "occurred_at": DECIDED_AT, "customer_id": "cus_gold00000001", "locale": locale,
    }  # fmt: skip
    schedule = (
        _instalment(1, date(2026, 12, 28), 330_185, 9_300),
        _instalment(2, date(2027, 1, 28), 333_457, 6_028),
        _instalment(3, date(2027, 2, 28), 336_358, 2_830),
    )
    if kind in ("booked", "booked_credit"):
        credit = 120_000 if kind == "booked_credit" else 0
        return LoanBooked(**{
            **base, "loan_id": LOAN_ID, "drawdown_id": LOAN_ID, "application_id": "app_gold_000001", "amount": 10_000 + credit // 100,
            "credit_used_fen": credit, "principal_fen": 1_000_000, "apr": 0.1095, "daily_rate": 0.0003, "term_months": 3,
            "instalment_interval": "P1M", "day_seconds": 86_400, "utc_offset_seconds": 28_800, "instalments": schedule,
            "total_interest_fen": 18_158, "total_repayable_fen": 1_018_158, "balance_seq": 4, "policy_version": "default@7", **changes,
        })  # fmt: skip
    if kind == "cured":
        return OverdueCured(**{
            **base, "repayment_id": "rp_gold_000002", "cured_on": date(2027, 1, 2), "worst_days_past_due": 5,
            "counts_until": datetime(2027, 12, 31, 16, tzinfo=UTC), "loan_ids": (LOAN_ID,), **changes,
        })  # fmt: skip
    first = schedule[0]
    step = {"reminder": 0, "missed": 1, "overdue_30": 30}[kind]
    common = {
        **base, "loan_id": LOAN_ID, "application_id": "app_gold_000001", "instalment": 1, "due_date": first.due_date, "pay_by": first.pay_by,
        "days_past_due": step, "amount_due_fen": first.amount_fen, "window_closes_at_days": 1,
    }  # fmt: skip
    if step == 0:
        return InstalmentDueSoon(**{**common, **changes})
    return InstalmentOverdue(**{**common, "step": step, "closes_window": step == 1, **changes})
