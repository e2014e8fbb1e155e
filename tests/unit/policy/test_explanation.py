"""A decision explained from its records, and verified by running its recorded inputs again."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from services.policy.record.explanation import explain, rule_checks, verify
from services.policy.windows.decisions import decision_event, propose
from services.policy.windows.model import Posting
from services.policy.windows.ports import Suspension
from services.policy.windows.rules import Close, evaluate
from shared.contracts import NotificationSent, WindowClosed, WindowOpened
from shared.references import reference_of
from tests.unit.policy.factories import NOW, default_policy, score


def _allocation(granted: int = 0, *, refusal: str | None = None, budget_bound: bool = False, available: int = 10**7) -> Posting:
    return Posting(fresh=True, seq=3, granted=granted, refusal=refusal, programme_part=0, available=available, budget_bound=budget_bound)


def _decision(the_score, policy=None, allocation=None):  # type: ignore[no-untyped-def]
    policy = policy or default_policy()
    proposal = propose(the_score, policy, NOW)
    if allocation is None:
        allocation = _allocation(proposal.verdict.limit if not isinstance(proposal.verdict, Close) else 0)
    return decision_event(proposal, allocation, policy, NOW)


@settings(max_examples=300, deadline=None)
@given(
    points=st.floats(400, 700),
    pd=st.floats(0.001, 0.6),
    grade=st.sampled_from("ABCDEFG"),
    segment=st.sampled_from(["individual", "small_business"]),
    income=st.integers(0, 2_000_000),
    overdue=st.integers(0, 3),
    inquiries=st.integers(0, 8),
    paused=st.sampled_from([None, "segments", "regions", "channels"]),
    suspended=st.booleans(),
    scheduled=st.sampled_from([None, "now", "later"]),
    cutoff_raise=st.sampled_from([0.0, 25.0, 80.0]),
    multiplier=st.sampled_from([1.0, 0.6, 0.05]),
)
def test_the_first_rule_an_explanation_shows_failing_is_the_rule_that_closed(
    points: float, pd: float, grade: str, segment: str, income: int, overdue: int, inquiries: int, paused: str | None, suspended: bool,
    scheduled: str | None, cutoff_raise: float, multiplier: float,
) -> None:  # fmt: skip
    values = {"segments": [segment], "regions": ["CN-SH"], "channels": ["app"]}
    changes: dict[str, object] = {f"pauses__{paused}": values[paused]} if paused else {}
    if scheduled:  # a dated pause of the segment: in force now, or from tomorrow
        start = NOW - timedelta(hours=1) if scheduled == "now" else NOW + timedelta(days=1)
        changes["pauses__scheduled"] = [{"segments": [segment], "start": start, "end": start + timedelta(days=2)}]
    changes["cycle__cutoff_raise"] = cutoff_raise
    changes["multipliers__segments"] = {segment: multiplier}
    policy = default_policy(**changes)
    the_score = score(points=points, pd=pd, grade=grade, segment=segment, income=income, overdue=overdue, inquiries=inquiries)
    suspension = Suspension(the_score.customer_id, "collections", NOW - timedelta(hours=1), None, "ops") if suspended else None
    verdict = evaluate(the_score, policy, NOW, suspension)
    checks = rule_checks(the_score, policy, NOW, suspension)
    failing = [c.rule for c in checks if not c.passed]
    if isinstance(verdict, Close):
        assert failing == [verdict.reason] and checks[-1].rule == verdict.reason
    else:
        assert failing == []


def test_an_opened_window_is_explained_with_every_bound_and_its_value() -> None:
    policy = default_policy()
    opened = _decision(score(grade="C", pd=0.08, income=90_000), policy)
    assert isinstance(opened, WindowOpened)
    x = explain(opened, score(grade="C", pd=0.08, income=90_000), policy, [])
    bounds = {b.bound: b for b in x.bounds}
    assert bounds["risk_grade"].amount == 27_000 and bounds["income_cap"].amount == 30_000 and bounds["absolute_cap"].amount == 200_000
    assert bounds["risk_grade"].binding and not bounds["income_cap"].binding
    assert "x 0.3 (grade C)" in bounds["risk_grade"].rule
    assert bounds["segment_budget"].amount == 10**7
    assert x.limit == 27_000 and [r.passed for r in x.rules] == [True] * len(x.rules)
    assert x.reference == reference_of(opened.decision_id)


def test_a_closure_is_explained_with_its_rule_threshold_reasons_and_advice() -> None:
    the_score = score(inquiries=6)
    closed = _decision(the_score)
    x = explain(closed, the_score, default_policy(), [])
    assert (x.outcome, x.category, x.reason) == ("closed", "credit", "knockout_inquiries")
    assert x.threshold == {"rule": "knockout_inquiries", "threshold": 3.0, "value": 6.0, "period_months": 3}
    assert x.rules[-1].rule == "knockout_inquiries" and (x.rules[-1].threshold, x.rules[-1].value, x.rules[-1].passed) == (3, 6, False)
    assert x.reasons[0]["code"] == "R_CHECKING_ACCOUNT" and x.reasons[0]["advice"] and x.reasons[0]["typical"]
    assert x.recourse[0]["code"] == "A_SHORTER_DURATION" and "24" in x.recourse[0]["text"]


def test_the_score_is_shown_to_a_customer_only_where_the_policy_allows_and_always_to_an_operator() -> None:
    quiet = default_policy(customer_care__show_score=False)
    the_score = score(points=480.0)
    closed = _decision(the_score, quiet)
    assert explain(closed, the_score, quiet, []).score is None
    operator = explain(closed, the_score, quiet, [], operator=True).score
    assert operator is not None and operator["points"] == 480.0 and operator["cutoff"] == 518 and "pd" in operator
    told = explain(_decision(the_score), the_score, default_policy(), []).score
    assert told is not None and "pd" not in told


def test_the_message_as_sent_is_part_of_the_explanation() -> None:
    closed = _decision(score(points=480.0))
    sent = NotificationSent(
        correlation_id=closed.application_id, notification_id=closed.decision_id, decision_id=closed.decision_id, decision_seq=3,
        application_id=closed.application_id, customer_id=closed.customer_id, channel="inbox", locale="zh-CN", outcome="closed",
        category="credit", reference=reference_of(closed.decision_id), title="您的借款额度暂未开通", body="……", policy_version="default@1",
    )  # fmt: skip
    x = explain(closed, score(points=480.0), default_policy(), [sent])
    assert x.messages == [{"channel": "inbox", "locale": "zh-CN", "title": "您的借款额度暂未开通", "body": "……", "reference": sent.reference, "sent_at": sent.occurred_at.isoformat()}]


def test_verify_reproduces_a_decision_from_its_recorded_score_and_policy_version() -> None:
    for the_score in (score(), score(inquiries=5), score(points=480.0), score(outcome="unscorable")):
        decision = _decision(the_score)
        verification = verify(decision, the_score, default_policy())
        assert verification.verdict == "reproduced", verification


def test_verify_says_a_decision_differs_when_the_inputs_do_not_give_it() -> None:
    decision = _decision(score())
    other_version = default_policy(cutoffs={"individual": 700, "small_business": 700})
    verification = verify(decision, score(), other_version)
    assert verification.verdict == "differs" and not verification.checks[0].same


def test_verify_reproduces_a_budget_refusal_up_to_the_budget() -> None:
    policy = default_policy()
    refused = decision_event(propose(score(), policy, NOW), _allocation(0, refusal="budget_exhausted"), policy, NOW)
    assert isinstance(refused, WindowClosed) and refused.reason == "budget_exhausted"
    verification = verify(refused, score(), policy)
    assert verification.verdict == "reproduced" and "budget" in verification.note


def test_verify_runs_the_points_through_the_recorded_model() -> None:
    class Card:
        model_id = "german-woe@1+test"

        def pd(self, points: float) -> float:
            return 0.04

        def grade(self, pd: float) -> str:
            return "A"

    decision = _decision(score())
    checks = {c.what: c for c in verify(decision, score(), default_policy(), model=Card()).checks}
    assert checks["model: PD of the points"].same and checks["model: grade of the PD"].same
    wrong = Card()
    wrong.pd = lambda points: 0.2  # type: ignore[method-assign]
    assert verify(decision, score(), default_policy(), model=wrong).verdict == "differs"


def test_a_lifecycle_closure_or_a_missing_input_is_said_plainly() -> None:
    decision = _decision(score())
    assert verify(decision, None, default_policy()).verdict == "inputs_missing"
    assert verify(decision, score(), None).verdict == "inputs_missing"
    expiry = decision.model_copy(update={"trigger": "expiry"})
    assert verify(expiry, score(), default_policy()).verdict == "not_a_rule_decision"
