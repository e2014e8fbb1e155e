"""Every rule and category of the policy, with plain values."""

from __future__ import annotations

from datetime import timedelta

from services.policy.windows.rules import Close, Offer, evaluate
from tests.unit.policy.factories import NOW, default_policy, score


def test_a_good_score_gets_an_offer_priced_by_grade() -> None:
    offer = evaluate(score(grade="B", pd=0.07), default_policy(), NOW)
    assert isinstance(offer, Offer)
    assert offer.apr == default_policy().grades["B"].apr
    assert offer.margin > 0
    assert offer.valid_until == NOW + timedelta(days=30)


def test_an_unscorable_application_closes_as_a_system_matter_with_a_retry_time() -> None:
    closed = evaluate(score(outcome="unscorable"), default_policy(), NOW)
    assert isinstance(closed, Close)
    assert (closed.category, closed.reason) == ("system", "scoring_failed")
    assert closed.retry_after == NOW + timedelta(minutes=30)


def test_maintenance_closes_as_system_until_it_ends() -> None:
    window = {"start": NOW - timedelta(hours=1), "end": NOW + timedelta(hours=1), "note": ""}
    closed = evaluate(score(), default_policy(maintenance=[window]), NOW)
    assert isinstance(closed, Close)
    assert (closed.category, closed.reason, closed.retry_after) == ("system", "maintenance", NOW + timedelta(hours=1))


def test_a_paused_segment_region_or_channel_closes_as_strategy() -> None:
    for field, value, reason in (
        ("pauses__segments", ["individual"], "segment_paused"),
        ("pauses__regions", ["CN-SH"], "region_paused"),
        ("pauses__channels", ["app"], "channel_paused"),
    ):
        closed = evaluate(score(), default_policy(**{field: value}), NOW)
        assert isinstance(closed, Close)
        assert (closed.category, closed.reason) == ("strategy", reason)
        assert closed.retry_after is not None


def test_a_recent_overdue_knocks_out_as_credit_with_the_scorecard_reasons() -> None:
    closed = evaluate(score(overdue=1), default_policy(), NOW)
    assert isinstance(closed, Close)
    assert (closed.category, closed.reason) == ("credit", "knockout_recent_overdue")
    assert closed.reasons and closed.reasons[0].code == "R_CHECKING_ACCOUNT"


def test_too_many_inquiries_knock_out_as_credit() -> None:
    closed = evaluate(score(inquiries=4), default_policy(), NOW)
    assert isinstance(closed, Close) and closed.reason == "knockout_inquiries"
    assert isinstance(evaluate(score(inquiries=3), default_policy(), NOW), Offer)


def test_points_below_the_segment_cutoff_close_as_credit_with_recourse() -> None:
    policy = default_policy()
    closed = evaluate(score(points=policy.cutoffs["individual"] - 1), policy, NOW)
    assert isinstance(closed, Close)
    assert (closed.category, closed.reason) == ("credit", "score_below_cutoff")
    assert closed.recourse and closed.recourse[0].code == "A_SHORTER_DURATION"
    # the small-business cut-off is its own
    between = (policy.cutoffs["small_business"] + policy.cutoffs["individual"]) / 2
    assert isinstance(evaluate(score(points=between, segment="small_business"), policy, NOW), Offer)


def test_a_window_opens_only_where_expected_profit_is_positive() -> None:
    policy = default_policy()
    # grade E's APR minus funding cost, over LGD, is the break-even PD
    terms = policy.grades["E"]
    break_even = (terms.apr - policy.pricing.funding_cost) / policy.pricing.lgd
    closed = evaluate(score(grade="E", pd=break_even + 0.01), policy, NOW)
    assert isinstance(closed, Close) and (closed.category, closed.reason) == ("credit", "unprofitable_risk")
    assert isinstance(evaluate(score(grade="E", pd=break_even - 0.01), policy, NOW), Offer)


def test_the_income_cap_bounds_the_limit_and_says_so() -> None:
    # grade A offers half of income; the regulation allows a third
    offer = evaluate(score(grade="A", income=90_000), default_policy(), NOW)
    assert isinstance(offer, Offer)
    assert offer.basis.bound_by == "income_cap"
    assert offer.limit == 30_000


def test_the_absolute_cap_bounds_a_large_limit() -> None:
    offer = evaluate(score(grade="A", income=3_000_000), default_policy(), NOW)
    assert isinstance(offer, Offer)
    assert (offer.limit, offer.basis.bound_by) == (200_000, "absolute_cap")


def test_a_cap_that_leaves_less_than_the_minimum_closes_as_regulatory() -> None:
    closed = evaluate(score(grade="A", income=1_200), default_policy(), NOW)
    assert isinstance(closed, Close)
    assert (closed.category, closed.reason) == ("regulatory", "income_cap")


def test_the_grade_grid_bounds_a_modest_limit() -> None:
    offer = evaluate(score(grade="D", pd=0.18, income=100_000), default_policy(), NOW)
    assert isinstance(offer, Offer)
    assert (offer.limit, offer.basis.bound_by) == (22_000, "risk_grade")


def test_the_cycle_factor_tightens_every_limit() -> None:
    base = evaluate(score(grade="D", pd=0.18, income=100_000), default_policy(), NOW)
    tight = evaluate(score(grade="D", pd=0.18, income=100_000), default_policy(cycle_factor=0.5), NOW)
    assert isinstance(base, Offer) and isinstance(tight, Offer)
    assert tight.limit == base.limit // 2
    assert tight.basis.cycle_factor == 0.5


def test_the_small_business_programme_boosts_the_limit_and_charges_its_own_budget() -> None:
    plain = evaluate(score(grade="D", pd=0.18, income=100_000), default_policy(), NOW)
    boosted = evaluate(score(grade="D", pd=0.18, income=100_000, segment="small_business"), default_policy(), NOW)
    assert isinstance(plain, Offer) and isinstance(boosted, Offer)
    assert boosted.programme == "small_business_boost"
    assert boosted.limit == round(plain.limit * 1.2)
    assert boosted.programme_part == boosted.limit - plain.limit


def test_requested_amount_bounds_only_when_the_policy_says_so() -> None:
    capped = evaluate(score(grade="D", pd=0.18, income=100_000), default_policy(limits__cap_at_requested=True), NOW)
    assert isinstance(capped, Offer)
    assert (capped.limit, capped.basis.bound_by) == (5_000, "requested_amount")


# --- the levers (issue 16) ---------------------------------------------------------------------------


def test_multipliers_cut_the_limits_of_a_segment_region_and_channel_after_the_caps() -> None:
    base = evaluate(score(grade="D", pd=0.18, income=100_000), default_policy(), NOW)
    cut = evaluate(
        score(grade="D", pd=0.18, income=100_000, region="CN-SH", channel="app"),
        default_policy(multipliers={"segments": {"individual": 0.8}, "regions": {"CN-SH": 0.5}, "channels": {"web": 0.1}}),
        NOW,
    )
    assert isinstance(base, Offer) and isinstance(cut, Offer)
    assert cut.limit == round(base.limit * 0.8 * 0.5) and cut.basis.multiplier == 0.4  # web is not this channel
    tiny = evaluate(score(grade="D", pd=0.18, income=100_000), default_policy(multipliers={"segments": {"individual": 0.01}}), NOW)
    assert isinstance(tiny, Close) and (tiny.category, tiny.reason) == ("strategy", "limit_multiplier")


def test_a_multiplier_above_one_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="less than or equal to 1"):
        default_policy(multipliers={"regions": {"CN-SH": 1.5}})


def test_the_cycle_raises_the_cutoff_and_the_applicant_in_between_hears_it_is_strategy() -> None:
    cutoff = default_policy().cutoffs["individual"]
    policy = default_policy(cycle={"cutoff_raise": 30})
    between = evaluate(score(points=cutoff + 10), policy, NOW)
    below = evaluate(score(points=cutoff - 1), policy, NOW)
    above = evaluate(score(points=cutoff + 31), policy, NOW)
    assert isinstance(between, Close) and (between.category, between.reason) == ("strategy", "cycle_cutoff")
    assert between.retry_after is not None
    assert isinstance(below, Close) and (below.category, below.reason) == ("credit", "score_below_cutoff")
    assert isinstance(above, Offer)


def test_a_scheduled_pause_closes_only_between_its_dates() -> None:
    window = {"regions": ["CN-SH"], "start": NOW + timedelta(hours=1), "end": NOW + timedelta(hours=3)}
    policy = default_policy(pauses__scheduled=[window])
    assert isinstance(evaluate(score(region="CN-SH"), policy, NOW), Offer)
    during = evaluate(score(region="CN-SH"), policy, NOW + timedelta(hours=2))
    assert isinstance(during, Close) and (during.category, during.reason) == ("strategy", "region_paused")
    assert isinstance(evaluate(score(region="CN-SH"), policy, NOW + timedelta(hours=3)), Offer)
    assert isinstance(evaluate(score(region="CN-BJ"), policy, NOW + timedelta(hours=2)), Offer)


def test_a_programme_boosts_only_between_its_dates() -> None:
    dated = [{"name": "spring", "segment": "small_business", "boost": 1.2, "budget": 600_000, "start": NOW + timedelta(days=1)}]
    policy = default_policy(programmes=dated)
    before = evaluate(score(grade="D", pd=0.18, income=100_000, segment="small_business"), policy, NOW)
    during = evaluate(score(grade="D", pd=0.18, income=100_000, segment="small_business", at=NOW + timedelta(days=2)), policy, NOW + timedelta(days=2))
    assert isinstance(before, Offer) and isinstance(during, Offer)
    assert before.programme is None and during.programme == "spring" and during.limit > before.limit
    # The application's time decides, not the decision's: received before the start, decided after it.
    late = evaluate(score(grade="D", pd=0.18, income=100_000, segment="small_business"), policy, NOW + timedelta(days=2))
    assert isinstance(late, Offer) and late.programme is None
