"""The policy's rules: a score and a policy version in, an offer or a closure with its category out.

Pure: no Kafka, no Redis, no clock (``now`` is an argument). The budget is applied afterwards,
atomically, by the portfolio book (``book.py`` for the rules, ``redis_book.py`` for its atomic twin).
Order of the rules, first match wins:

1. unscorable application             -> system      (scoring_failed / application_invalid)
2. maintenance window                 -> system      (retry when it ends)
3. the customer is suspended          -> strategy    (customer_suspended, until the suspension ends)
4. paused segment, region or channel  -> strategy    (pauses in force now, scheduled ones included)
5. knock-outs (overdue, inquiries)    -> credit      (with the scorecard's reasons)
6. points below the segment cut-off   -> credit      (reasons and recourse)
7. points below the cut-off the cycle
   raised it to                       -> strategy    (cycle_cutoff: the usual bar is met)
8. expected profit not positive       -> credit      (unprofitable_risk)
9. a cap leaves less than the minimum -> regulatory  (income_cap / absolute_cap)
10. the group's limit multiplier leaves
    less than the minimum             -> strategy    (limit_multiplier)
11. otherwise an offer: limit from grade and income x cycle factor x programme (running when the
    application was received: `score.occurred_at`), capped,
    times the multipliers of the customer's segment, region and channel.

Every credit and regulatory closure carries the rule's threshold (`RuleThreshold`): the customer is
told the rule, not only that one applied. `limit_bounds` is the one computation of the bounds on a
limit: the offer takes the smallest, an explanation shows them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from services.policy.control.document import GradeTerms, PolicyDocument, Programme
from services.policy.windows.book import round_down
from services.policy.windows.ports import Suspension
from shared.contracts import ApplicationFacts, LimitBasis, Reason, RecourseAction, RuleThreshold, ScoreComputed
from shared.contracts.windows import Category

__all__ = ["BOUND_PRIORITY", "Close", "LimitBound", "Offer", "evaluate", "income_cap", "limit_bounds", "threshold_of"]

# On a tie the regulation is named: it would bind even if the grade grid were looser.
BOUND_PRIORITY = {"absolute_cap": 0, "income_cap": 1, "requested_amount": 2, "risk_grade": 3}


@dataclass(frozen=True, slots=True)
class Close:
    """Keep the window closed, and why."""

    category: Category
    reason: str
    retry_after: datetime | None = None
    reasons: tuple[Reason, ...] = ()
    recourse: tuple[RecourseAction, ...] = ()
    threshold: RuleThreshold | None = None


@dataclass(frozen=True, slots=True)
class LimitBound:
    """One bound on a limit, in CNY before rounding: the grade's limit, the caps, the amount asked for."""

    name: str  # risk_grade | income_cap | absolute_cap | requested_amount
    amount: float


@dataclass(frozen=True, slots=True)
class Offer:
    """A window the policy would open, before the portfolio budget has its say."""

    limit: int
    apr: float
    pd: float
    margin: float  # expected profit per unit of limit: APR - funding cost - PD x LGD
    el_rate: float  # expected loss per unit of limit: PD x LGD
    basis: LimitBasis
    programme: str | None = None
    programme_part: int = 0  # the part of the limit due to the programme boost
    valid_until: datetime = field(default_factory=lambda: datetime.min)


def income_cap(facts: ApplicationFacts, policy: PolicyDocument) -> float:
    """The income rule's cap: annual income times the policy's share, as an exact fraction (0.3333333333
    is a third), so a third of 90,000 is 30,000, not 29,999.99."""
    return float(facts.annual_income * Fraction(policy.regulatory.income_fraction).limit_denominator(10_000))


def limit_bounds(facts: ApplicationFacts, terms: GradeTerms, policy: PolicyDocument, programme: Programme | None) -> list[LimitBound]:
    """Every bound on the limit, the grade's limit first (with the cycle factor and any programme boost)."""
    boost = programme.boost if programme else 1.0
    unboosted = min(facts.annual_income * terms.income_multiple, terms.max_limit) * policy.cycle_factor
    bounds = [
        LimitBound("risk_grade", unboosted * boost),
        LimitBound("income_cap", income_cap(facts, policy)),
        LimitBound("absolute_cap", policy.regulatory.absolute_cap),
    ]
    if policy.limits.cap_at_requested:
        bounds.append(LimitBound("requested_amount", facts.requested_amount))
    return bounds


def threshold_of(reason: str, score: ScoreComputed, policy: PolicyDocument) -> RuleThreshold | None:
    """The threshold a closure by `reason` is told with (None for rules without one)."""
    facts = score.facts
    if facts is None:
        return None
    if reason == "knockout_recent_overdue":
        return RuleThreshold(rule=reason, threshold=policy.knockouts.max_overdue_12m, value=facts.bureau.overdue_count_12m, period_months=12)
    if reason == "knockout_inquiries":
        return RuleThreshold(rule=reason, threshold=policy.knockouts.max_inquiries_3m, value=facts.bureau.inquiries_3m, period_months=3)
    if reason == "score_below_cutoff":
        return RuleThreshold(rule=reason, threshold=policy.cutoffs[facts.segment], value=score.points)
    if reason == "income_cap":
        return RuleThreshold(rule=reason, threshold=policy.regulatory.income_fraction)
    if reason == "absolute_cap":
        return RuleThreshold(rule=reason, threshold=policy.regulatory.absolute_cap)
    if reason == "below_minimum_limit":
        return RuleThreshold(rule=reason, threshold=policy.limits.min_limit)
    return None


def _credit(reason: str, score: ScoreComputed, policy: PolicyDocument) -> Close:
    return Close("credit", reason, reasons=score.reasons, recourse=score.recourse, threshold=threshold_of(reason, score, policy))


def evaluate(score: ScoreComputed, policy: PolicyDocument, now: datetime, suspension: Suspension | None = None) -> Offer | Close:
    timing = policy.timing
    system_retry = now + timing.system_retry
    strategy_retry = now + timing.strategy_retry

    if score.outcome != "scored" or score.facts is None or score.points is None or score.pd is None:
        reason = "application_invalid" if (score.failure or "").startswith("application_invalid") else "scoring_failed"
        return Close("system", reason, retry_after=system_retry)

    for window in policy.maintenance:
        if window.start <= now < window.end:
            return Close("system", "maintenance", retry_after=window.end)

    if suspension is not None and suspension.active(now):
        return Close("strategy", "customer_suspended", retry_after=suspension.until)

    facts = score.facts
    pauses = policy.pauses
    if pauses.scheduled:
        now_paused = pauses.at(now)
        segments, regions, channels = now_paused["segment"], now_paused["region"], now_paused["channel"]
    else:
        segments, regions, channels = pauses.segments, pauses.regions, pauses.channels  # type: ignore[assignment]
    if facts.segment in segments:
        return Close("strategy", "segment_paused", retry_after=strategy_retry)
    if facts.region in regions:
        return Close("strategy", "region_paused", retry_after=strategy_retry)
    if facts.channel in channels:
        return Close("strategy", "channel_paused", retry_after=strategy_retry)

    if facts.bureau.overdue_count_12m > policy.knockouts.max_overdue_12m:
        return _credit("knockout_recent_overdue", score, policy)
    if facts.bureau.inquiries_3m > policy.knockouts.max_inquiries_3m:
        return _credit("knockout_inquiries", score, policy)

    cutoff = policy.cutoffs[facts.segment]
    if score.points < cutoff:
        return _credit("score_below_cutoff", score, policy)
    if score.points < cutoff + policy.cycle.cutoff_raise:
        # The usual bar is met: the platform raised it for the cycle, which is strategy, not their credit.
        return Close("strategy", "cycle_cutoff", retry_after=strategy_retry)

    terms = policy.grades.get(score.grade or "")  # type: ignore[call-overload]
    if terms is None:
        return Close("system", "scoring_failed", retry_after=system_retry)
    el_rate = score.pd * policy.pricing.lgd
    margin = terms.apr - policy.pricing.funding_cost - el_rate
    if margin <= 0:
        return _credit("unprofitable_risk", score, policy)

    # A dated programme boosts the applications received while it runs (the application's time, as
    # its budget is charged: see decisions.py), whenever they are decided.
    programme = policy.programme_for(facts.segment, score.occurred_at)
    boost = programme.boost if programme else 1.0
    unboosted = min(facts.annual_income * terms.income_multiple, terms.max_limit) * policy.cycle_factor
    bounds = limit_bounds(facts, terms, policy, programme)
    smallest = min(bounds, key=lambda b: (b.amount, BOUND_PRIORITY[b.name]))
    amount, bound_by = smallest.amount, smallest.name
    limit = round_down(amount, policy.limits.round_to)
    absolute_cap = policy.regulatory.absolute_cap
    if limit < policy.limits.min_limit:
        if bound_by in ("income_cap", "absolute_cap"):
            return Close("regulatory", bound_by, retry_after=None, threshold=threshold_of(bound_by, score, policy))
        return _credit("below_minimum_limit", score, policy)
    multiplier = policy.multipliers.factor(facts.segment, facts.region, facts.channel)
    if multiplier < 1:
        limit = round_down(amount * multiplier, policy.limits.round_to)
        unboosted *= multiplier
        if limit < policy.limits.min_limit:
            return Close("strategy", "limit_multiplier", retry_after=strategy_retry)

    programme_part = max(0, limit - round_down(min(limit, unboosted), policy.limits.round_to)) if programme else 0
    # The rule that bound, and the rules' parameters: no amount computed from income goes on the
    # wire (credit.windows is kept forever; income times a fraction would give the income back).
    basis = LimitBasis(
        cycle_factor=policy.cycle_factor,
        programme=programme.name if programme else None,
        programme_boost=boost,
        income_fraction=policy.regulatory.income_fraction,
        absolute_cap=absolute_cap,
        bound_by=bound_by,  # type: ignore[arg-type]
        multiplier=multiplier,
    )
    return Offer(
        limit=limit,
        apr=terms.apr,
        pd=score.pd,
        margin=margin,
        el_rate=el_rate,
        basis=basis,
        programme=programme.name if programme else None,
        programme_part=programme_part,
        valid_until=now + timing.window_validity,
    )
