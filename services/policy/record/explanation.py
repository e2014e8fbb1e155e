"""A decision explained on request, and checked by running its recorded inputs again. Pure.

`explain` puts together what a customer (through an upstream app) or an operator may ask of any
decision still on `credit.windows` (PIPL art. 24, the right to an explanation): the outcome and its
category, the reasons with what to do about each, the recourse, the limit's basis with every bound
and its value, the rules of the policy version that decided, in their order, each with its threshold
and whether it passed, the model, and the message as it was sent.

`verify` runs the recorded score through the recorded policy version (`rules.evaluate`, at the
decision's own time) and, when the recorded model is at hand, the recorded points through its
calibration and grade bands, and says whether that reproduces the decision. The budget's answer
depends on the whole book at that moment: a window the budget cut or refused is reproduced up to
the budget (the rules' offer is shown beside what the book granted).

`rule_checks` lists the rules in `rules.evaluate`'s order; a property test holds its first failing
rule equal to the rule `evaluate` closes with.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from services.policy.control.document import PolicyDocument
from services.policy.windows.book import round_down
from services.policy.windows.ports import Suspension
from services.policy.windows.rules import BOUND_PRIORITY, Close, Offer, evaluate, limit_bounds
from shared.contracts import Decision, NotificationSent, ScoreComputed, WindowClosed, WindowOpened
from shared.reasons import ADVICE, CATEGORIES, CLOSURE_REASONS, REASON_ADVICE, REASONS, reason_code
from shared.references import reference_of

__all__ = [
    "Bound",
    "Check",
    "Explanation",
    "PointsModel",
    "RuleCheck",
    "Verification",
    "explain",
    "limit_basis",
    "no_decision",
    "rule_checks",
    "verify",
]

Verdict = Literal["reproduced", "differs", "not_a_rule_decision", "inputs_missing"]
_BUDGET_REFUSALS = frozenset({"budget_exhausted", "budget_paced", "newer_application"})


class PointsModel(Protocol):
    """What `verify` needs of the recorded scorecard: its id, and points -> PD -> grade."""

    model_id: str

    def pd(self, points: float) -> float: ...

    def grade(self, pd: float) -> str: ...


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """One rule of the policy in `evaluate`'s order: its threshold, the customer's figure, the result."""

    rule: str
    threshold: float | str | None
    value: float | str | None
    passed: bool


@dataclass(frozen=True, slots=True)
class Bound:
    """One bound on the limit with its value (CNY, rounded down to the policy's step), and its rule."""

    bound: str
    amount: int
    rule: str
    binding: bool = False


@dataclass(frozen=True, slots=True)
class Check:
    what: str
    recorded: str
    recomputed: str
    same: bool


@dataclass(frozen=True, slots=True)
class Verification:
    verdict: Verdict
    note: str
    checks: tuple[Check, ...] = ()


@dataclass(slots=True)
class Explanation:
    reference: str
    decision_id: str
    application_id: str
    customer_id: str
    decided_at: str
    trigger: str
    locale: str
    outcome: str
    category: str | None
    category_text: str | None
    reason: str | None
    reason_text: str | None
    policy_version: str
    model_id: str | None
    limit: int | None = None
    apr: float | None = None
    valid_until: str | None = None
    threshold: dict[str, Any] | None = None
    score: dict[str, Any] | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)
    recourse: list[dict[str, Any]] = field(default_factory=list)
    bounds: list[Bound] = field(default_factory=list)
    rules: list[RuleCheck] = field(default_factory=list)
    review: dict[str, Any] | None = None
    closes_reference: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    inputs: str = "complete"  # complete | no_score | no_policy_version
    verification: Verification | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _in_maintenance(policy: PolicyDocument, now: datetime) -> bool:
    return any(w.start <= now < w.end for w in policy.maintenance)


def rule_checks(score: ScoreComputed, policy: PolicyDocument, now: datetime, suspension: Suspension | None = None) -> list[RuleCheck]:
    """Every rule `rules.evaluate` applies, in its order, with thresholds and the customer's figures.

    Stops after the first rule that fails (that rule decided); an offer passes them all.
    """
    checks: list[RuleCheck] = []

    def check(rule: str, threshold: float | str | None, value: float | str | None, passed: bool) -> bool:
        checks.append(RuleCheck(rule, threshold, value, passed))
        return passed

    facts = score.facts
    if not check("scored", None, score.outcome, score.outcome == "scored" and facts is not None and score.points is not None and score.pd is not None):
        return checks
    assert facts is not None and score.points is not None and score.pd is not None
    if not check("maintenance", None, None, not _in_maintenance(policy, now)):
        return checks
    if not check("customer_suspended", None, None, suspension is None or not suspension.active(now)):
        return checks
    paused_now = policy.pauses.at(now)  # the standing pauses and the scheduled ones in force
    for rule, value, paused in (
        ("segment_paused", facts.segment, paused_now["segment"]),
        ("region_paused", facts.region, paused_now["region"]),
        ("channel_paused", facts.channel, paused_now["channel"]),
    ):
        if not check(rule, ", ".join(sorted(paused)) or None, value, value not in paused):
            return checks
    knockouts = policy.knockouts
    if not check("knockout_recent_overdue", knockouts.max_overdue_12m, facts.bureau.overdue_count_12m, facts.bureau.overdue_count_12m <= knockouts.max_overdue_12m):
        return checks
    if not check("knockout_inquiries", knockouts.max_inquiries_3m, facts.bureau.inquiries_3m, facts.bureau.inquiries_3m <= knockouts.max_inquiries_3m):
        return checks
    cutoff = policy.cutoffs[facts.segment]
    if not check("score_below_cutoff", cutoff, round(score.points, 1), score.points >= cutoff):
        return checks
    raised = cutoff + policy.cycle.cutoff_raise
    if policy.cycle.cutoff_raise and not check("cycle_cutoff", raised, round(score.points, 1), score.points >= raised):
        return checks
    terms = policy.grades.get(score.grade or "")  # type: ignore[call-overload]
    if not check("grade_priced", None, score.grade, terms is not None):
        return checks
    margin = terms.apr - policy.pricing.funding_cost - score.pd * policy.pricing.lgd
    if not check("unprofitable_risk", 0.0, round(margin, 6), margin > 0):
        return checks
    bounds = limit_bounds(facts, terms, policy, policy.programme_for(facts.segment, score.occurred_at))
    smallest = min(bounds, key=lambda b: (b.amount, BOUND_PRIORITY[b.name]))
    limit = round_down(smallest.amount, policy.limits.round_to)
    rule = smallest.name if smallest.name in ("income_cap", "absolute_cap") else "below_minimum_limit"
    if not check(rule, policy.limits.min_limit, None, limit >= policy.limits.min_limit):
        return checks
    multiplier = policy.multipliers.factor(facts.segment, facts.region, facts.channel)
    if multiplier < 1:
        lowered = round_down(smallest.amount * multiplier, policy.limits.round_to)
        check("limit_multiplier", policy.limits.min_limit, None, lowered >= policy.limits.min_limit)
    return checks


def _bound_rule(name: str, score: ScoreComputed, policy: PolicyDocument) -> str:
    facts = score.facts
    assert facts is not None
    if name == "risk_grade":
        terms = policy.grades[score.grade]  # type: ignore[index]
        programme = policy.programme_for(facts.segment, score.occurred_at)
        text = f"annual income x {terms.income_multiple} (grade {score.grade}), at most {terms.max_limit}, x cycle factor {policy.cycle_factor}"
        return text + (f" x programme {programme.name} {programme.boost}" if programme else "")
    if name == "income_cap":
        return f"annual income x {policy.regulatory.income_fraction:.4g}"
    if name == "absolute_cap":
        return "the same for everyone"
    return "the amount asked for"


def limit_basis(score: ScoreComputed, policy: PolicyDocument, decision: Decision) -> list[Bound]:
    """Every bound on the limit with its value, from the recorded score and policy version."""
    facts = score.facts
    terms = policy.grades.get(score.grade or "")  # type: ignore[call-overload]
    if facts is None or terms is None:
        return []
    binding = decision.basis.bound_by if isinstance(decision, WindowOpened) else (decision.reason if isinstance(decision, WindowClosed) else "")
    step = policy.limits.round_to
    bounds = [
        Bound(b.name, round_down(b.amount, step), _bound_rule(b.name, score, policy), b.name == binding)
        for b in limit_bounds(facts, terms, policy, policy.programme_for(facts.segment, score.occurred_at))
    ]
    if isinstance(decision, WindowOpened) and decision.basis.budget_available is not None:
        bounds.append(Bound("segment_budget", decision.basis.budget_available, "what the segment's budget had left", binding == "segment_budget"))
    return bounds


def _reasons(decision: WindowClosed, locale: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    by_characteristic = {action.characteristic: action for action in decision.recourse}
    reasons = []
    for reason in decision.reasons:
        action = by_characteristic.get(reason.characteristic)
        advice = ADVICE.get(action.code) if action is not None else None
        generic = REASON_ADVICE.get(reason.code)
        reasons.append(
            {
                "code": reason.code,
                "text": REASONS[reason.code](locale) if reason.code in REASONS else reason.code,
                "points_lost": round(reason.points_lost, 1),
                "advice": advice.text(locale).format(target=action.target) if advice and action else (generic.text(locale) if generic else None),
                "typical": advice.typical(locale) if advice else (generic.typical(locale) if generic else None),
            }
        )
    recourse = [
        {
            "code": a.code,
            "characteristic": a.characteristic,
            "text": ADVICE[a.code].text(locale).format(target=a.target) if a.code in ADVICE else a.code,
            "current": a.current,
            "target": a.target,
            "points_gain": round(a.points_gain, 1),
            "reason": reason_code(a.characteristic),
        }
        for a in decision.recourse
    ]
    return reasons, recourse


def explain(
    decision: Decision,
    score: ScoreComputed | None,
    policy: PolicyDocument | None,
    messages: list[NotificationSent],
    *,
    operator: bool = False,
) -> Explanation:
    """A decision explained from its records. `operator`: the score, PD and grade are shown whatever
    the policy lets customers see (an operator's CLI; the customer-data API is not one)."""
    locale = decision.locale
    closed = decision if isinstance(decision, WindowClosed) else None
    opened = decision if isinstance(decision, WindowOpened) else None
    explanation = Explanation(
        reference=reference_of(decision.decision_id),
        decision_id=str(decision.decision_id),
        application_id=decision.application_id,
        customer_id=decision.customer_id,
        decided_at=decision.occurred_at.isoformat(),
        trigger=decision.trigger,
        locale=locale,
        outcome="opened" if opened else "closed",
        category=closed.category if closed else None,
        category_text=CATEGORIES[closed.category](locale) if closed else None,
        reason=closed.reason if closed else None,
        reason_text=CLOSURE_REASONS[closed.reason](locale) if closed and closed.reason in CLOSURE_REASONS else None,
        policy_version=decision.policy_version,
        model_id=decision.model_id,
        inputs="complete" if score is not None and policy is not None else ("no_score" if score is None else "no_policy_version"),
    )
    if opened:
        explanation.limit, explanation.apr, explanation.valid_until = opened.limit, opened.apr, opened.valid_until.isoformat()
    if closed:
        explanation.threshold = closed.threshold.model_dump() if closed.threshold else None
        explanation.reasons, explanation.recourse = _reasons(closed, locale)
        explanation.closes_reference = reference_of(closed.closes_decision_id) if closed.closes_decision_id else None
    points, pd, grade = (opened.points, opened.pd, opened.grade) if opened else (closed.points, closed.pd, closed.grade) if closed else (None, None, None)
    if points is not None and (operator or decision.score_disclosed):
        cutoff = policy.cutoffs.get(decision.segment) if policy and decision.segment else None  # type: ignore[call-overload]
        explanation.score = {"points": round(points, 1), "grade": grade, "cutoff": cutoff, **({"pd": pd} if operator else {})}
    if decision.reviewed_decision_id is not None:
        explanation.review = {"reviewed_reference": reference_of(decision.reviewed_decision_id), "note": decision.review_note}
    if score is not None and policy is not None and decision.trigger in ("application", "redecision") and score.outcome == "scored":
        suspended = Suspension(decision.customer_id, "", decision.occurred_at, None, "") if closed and closed.reason == "customer_suspended" else None
        explanation.rules = rule_checks(score, policy, decision.occurred_at, suspended)
        explanation.bounds = limit_basis(score, policy, decision)
    elif score is not None and policy is not None and decision.trigger == "review" and opened:
        explanation.bounds = limit_basis(score, policy, decision)
    explanation.messages = [
        {"channel": m.channel, "locale": m.locale, "title": m.title, "body": m.body, "reference": m.reference, "sent_at": m.occurred_at.isoformat()}
        for m in messages
    ]
    return explanation


# --- verification -------------------------------------------------------------------------------------


def _money(value: float | int | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _model_checks(score: ScoreComputed, model: PointsModel | None) -> tuple[list[Check], str]:
    if score.points is None or score.pd is None:
        return [], ""
    if model is None or model.model_id != score.model_id:
        return [], f"the model {score.model_id} is not at hand: its points were taken as recorded"
    pd = model.pd(score.points)
    grade = model.grade(pd)
    return [
        Check("model: PD of the points", f"{score.pd:.6f}", f"{pd:.6f}", math.isclose(pd, score.pd, rel_tol=1e-9, abs_tol=1e-12)),
        Check("model: grade of the PD", score.grade or "-", grade, grade == score.grade),
    ], ""


def verify(
    decision: Decision,
    score: ScoreComputed | None,
    policy: PolicyDocument | None,
    *,
    suspension: Suspension | None = None,
    model: PointsModel | None = None,
) -> Verification:
    """Run the recorded inputs through the recorded policy version (and model) and compare."""
    if decision.trigger in ("expiry", "pause", "suspension"):
        return Verification("not_a_rule_decision", f"a lifecycle closure ({decision.trigger}): verify the decision it closed")
    if score is None:
        return Verification("inputs_missing", "the score this decision was made on is not on credit.scores")
    if policy is None:
        return Verification("inputs_missing", f"policy version {decision.policy_version} is not on credit.policy nor the shipped default")
    checks, note = _model_checks(score, model)
    if decision.trigger == "review":
        return _verify_review(decision, score, policy, checks)
    verdict = evaluate(score, policy, decision.occurred_at, suspension)
    checks += _compare(decision, verdict)
    same = all(c.same for c in checks)
    budget_note = ""
    if isinstance(decision, WindowClosed) and isinstance(verdict, Offer):
        budget_note = "the rules' offer was refused by the book (the budget at that moment), as recorded"
    elif isinstance(decision, WindowOpened) and decision.basis.bound_by == "segment_budget":
        budget_note = "the budget cut the rules' offer, as recorded"
    return Verification("reproduced" if same else "differs", "; ".join(n for n in (budget_note, note) if n), tuple(checks))


def _compare(decision: Decision, verdict: Offer | Close) -> list[Check]:
    if isinstance(decision, WindowClosed):
        if isinstance(verdict, Close):
            checks = [Check("outcome", f"closed: {decision.category}/{decision.reason}", f"closed: {verdict.category}/{verdict.reason}",
                            (decision.category, decision.reason) == (verdict.category, verdict.reason))]  # fmt: skip
            if decision.threshold is not None or verdict.threshold is not None:
                checks.append(Check("threshold", str(decision.threshold and decision.threshold.threshold), str(verdict.threshold and verdict.threshold.threshold),
                                    decision.threshold == verdict.threshold))  # fmt: skip
            return checks
        same = decision.category == "strategy" and decision.reason in _BUDGET_REFUSALS
        return [Check("outcome", f"closed: {decision.category}/{decision.reason}", f"rules offer {_money(verdict.limit)}, then the budget", same)]
    assert isinstance(decision, WindowOpened)
    if isinstance(verdict, Close):
        return [Check("outcome", f"opened: {_money(decision.limit)}", f"closed: {verdict.category}/{verdict.reason}", False)]
    budget_cut = decision.basis.bound_by == "segment_budget"
    limit_same = decision.limit <= verdict.limit if budget_cut else decision.limit == verdict.limit
    return [
        Check("limit", _money(decision.limit), _money(verdict.limit) + (" (before the budget)" if budget_cut else ""), limit_same),
        Check("bound by", decision.basis.bound_by, verdict.basis.bound_by, budget_cut or decision.basis.bound_by == verdict.basis.bound_by),
        Check("APR", f"{decision.apr:.4%}", f"{verdict.apr:.4%}", decision.apr == verdict.apr),
        Check("valid until", decision.valid_until.isoformat(), verdict.valid_until.isoformat(), decision.valid_until == verdict.valid_until),
    ]


def _verify_review(decision: Decision, score: ScoreComputed, policy: PolicyDocument, checks: list[Check]) -> Verification:
    note = "a person's decision on review: it is checked against the regulatory caps, not the rules"
    if isinstance(decision, WindowOpened) and score.facts is not None:
        caps = [b for b in limit_basis(score, policy, decision) if b.bound in ("income_cap", "absolute_cap")]
        cap = min((b.amount for b in caps), default=None)
        checks.append(Check("within the regulatory caps", _money(decision.limit), f"at most {_money(cap)}", cap is None or decision.limit <= cap))
    return Verification("reproduced" if all(c.same for c in checks) else "differs", note, tuple(checks))


def no_decision(reference: str) -> dict[str, Any]:
    """The answer for a reference that leads nowhere (the same for an unknown and another's)."""
    return {"reference": reference, "error": "not_found"}

