"""What each disclosure says, in which words and number formats."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.notification.disclosure import compose, moment, money, reference_for, render, share_of_income
from shared.contracts import NotificationSent, Reason, RecourseAction, RuleThreshold
from shared.reasons import (
    BOUNDS,
    CATEGORIES,
    CLOSURE_REASONS,
    REASON_ADVICE,
    REASONS,
    REGULATORY_RULES,
    SYSTEM_NEXT_STEP,
)
from tests.unit.notification.factories import DECIDED_AT, closed, opened

LOCALES = ("zh-CN", "en")
CATEGORY_OF = {
    "score_below_cutoff": "credit",
    "knockout_recent_overdue": "credit",
    "knockout_inquiries": "credit",
    "unprofitable_risk": "credit",
    "below_minimum_limit": "credit",
    "income_cap": "regulatory",
    "absolute_cap": "regulatory",
    "maintenance": "system",
    "scoring_failed": "system",
    "application_invalid": "system",
    "dependency_unavailable": "system",
}


def test_an_opened_window_tells_limit_price_validity_and_basis_in_chinese() -> None:
    body = render(opened("zh-CN")).body
    assert "额度:¥30,000" in body
    assert "年化利率 10.95%" in body and "日利率 0.03%" in body and "每天利息 ¥3.00" in body
    assert "有效期:30天,至 2026年12月28日 12:00(中国时间)" in body
    assert BOUNDS["risk_grade"]("zh-CN") in body and "风险等级 C" in body


def test_an_opened_window_tells_limit_price_validity_and_basis_in_english() -> None:
    disclosure = render(opened("en"))
    assert disclosure.title == "Your borrowing window is open"
    body = disclosure.body
    assert "Limit: CN¥30,000" in body
    assert "10.95% a year (APR)" in body and "daily rate 0.03%" in body and "CN¥3.00 a day for every CN¥10,000" in body
    assert "Open for: 30 days, until December 28, 2026, 12:00\u202fPM (China Time)" in body  # CLDR: a narrow space


@pytest.mark.parametrize("bound", ["risk_grade", "requested_amount", "income_cap", "absolute_cap", "segment_budget"])
@pytest.mark.parametrize("locale", LOCALES)
def test_an_opened_window_names_what_set_its_limit(bound: str, locale: str) -> None:
    body = render(opened(locale, bound_by=bound)).body
    assert BOUNDS[bound](locale).format(share=share_of_income(1 / 3, locale)) in body
    if bound == "absolute_cap":
        assert money(200_000, locale) in body


@pytest.mark.parametrize(
    ("fraction", "zh", "en"), [(1 / 3, "三分之一", "a third"), (0.5, "二分之一", "half"), (0.4, "40%", "40%"), (None, "三分之一", "a third")]
)
def test_the_income_rule_is_told_with_the_share_the_decision_carries(fraction: float | None, zh: str, en: str) -> None:
    assert f"余额不超过年收入的{zh}" in render(opened("zh-CN", bound_by="income_cap", income_fraction=fraction)).body
    assert f"balance at most {en} of annual income" in render(opened("en", bound_by="income_cap", income_fraction=fraction)).body


@pytest.mark.parametrize("locale", LOCALES)
def test_a_credit_closure_gives_each_principal_reason_what_to_do_and_how_long(locale: str) -> None:
    decision = closed(locale)
    view = compose(decision)
    assert [f.text for f in view.factors] == [REASONS[r.code](locale) for r in decision.reasons]
    assert all(f.advice and f.typical for f in view.factors)
    body = render(decision).body
    for reason in decision.reasons:
        assert REASONS[reason.code](locale) in body
    # where the scorecard has a concrete target it is used, money shown as CNY
    assert money(200, locale) in body and "24" in body
    # where it has none, the shared advice for that reason
    assert REASON_ADVICE["R_CREDIT_HISTORY"].text(locale) in body
    assert REASON_ADVICE["R_CREDIT_HISTORY"].typical(locale) in body
    # a change of the plan that is not among the reasons is still told
    assert money(3999, locale) in body


def test_a_credit_closure_tells_at_most_four_reasons() -> None:
    many = tuple(
        Reason(code=f"R_{c.upper()}", characteristic=c, points_lost=1.0)
        for c in ("savings", "property", "housing", "job")
    )
    view = compose(closed("en").model_copy(update={"reasons": many + many}))
    assert len(view.factors) == 4


@pytest.mark.parametrize("locale", LOCALES)
def test_a_knock_out_leads_with_what_to_do_about_it(locale: str) -> None:
    view = compose(closed(locale, reason="knockout_recent_overdue"))
    assert view.lead_advice is not None and view.lead_advice.typical
    assert "12" in view.lead_advice.text


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(
    "reason", ["segment_paused", "region_paused", "channel_paused", "budget_exhausted", "budget_paced"]
)
def test_a_strategy_closure_says_it_is_not_about_credit_and_when_to_try_again(reason: str, locale: str) -> None:
    decision = closed(locale, "strategy", reason)
    body = render(decision).body
    assert CATEGORIES["strategy"](locale) in body and CLOSURE_REASONS[reason](locale) in body
    assert moment(decision.retry_after, locale) in body  # type: ignore[arg-type]
    assert ("信用" in body) if locale == "zh-CN" else ("not about your credit" in body)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_pause_closing_an_open_window_names_the_window_it_closes(locale: str) -> None:
    earlier = uuid.UUID("0f2a9c1b-77d0-4e5a-9b61-0c2d4e6f8a10")
    decision = closed(
        locale, "strategy", "segment_paused", trigger="pause", retry_after=None, closes_decision_id=earlier
    )
    disclosure = render(decision)
    assert compose(decision).closes_reference in disclosure.body
    assert disclosure.title in ("您的借款额度已关闭", "Your borrowing window is closed")


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("reason", ["scoring_failed", "maintenance", "dependency_unavailable"])
def test_a_system_closure_says_it_is_technical_and_when_to_try_again(reason: str, locale: str) -> None:
    decision = closed(locale, "system", reason)
    body = render(decision).body
    assert CATEGORIES["system"](locale) in body and CLOSURE_REASONS[reason](locale) in body
    assert moment(DECIDED_AT + timedelta(minutes=30), locale) in body


@pytest.mark.parametrize("locale", LOCALES)
def test_a_maintenance_closure_says_it_is_decided_again_by_itself(locale: str) -> None:
    body = render(closed(locale, "system", "maintenance")).body
    assert SYSTEM_NEXT_STEP["maintenance"](locale).format(retry_after=moment(DECIDED_AT + timedelta(minutes=30), locale)) in body
    assert ("无需重新申请" in body) if locale == "zh-CN" else ("you need not apply again" in body)


@pytest.mark.parametrize("locale", LOCALES)
def test_an_application_that_could_not_be_read_tells_the_customer_to_apply_again(locale: str) -> None:
    body = render(closed(locale, "system", "application_invalid")).body
    assert SYSTEM_NEXT_STEP["application_invalid"](locale) in body
    assert ("重新提交申请" in body) if locale == "zh-CN" else ("apply again" in body)
    assert "decide again" not in body and "自动重新决定" not in body  # nothing decides it again by itself


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("rule", ["income_cap", "absolute_cap"])
def test_a_regulatory_closure_states_the_rule(rule: str, locale: str) -> None:
    threshold = RuleThreshold(rule=rule, threshold=1 / 3 if rule == "income_cap" else 200_000)
    body = render(closed(locale, "regulatory", rule, threshold=threshold)).body
    words = REGULATORY_RULES[rule](locale).format(share=share_of_income(1 / 3, locale), cap=money(200_000, locale))
    assert CATEGORIES["regulatory"](locale) in body and words in body


@pytest.mark.parametrize(("fraction", "zh", "en"), [(0.25, "四分之一", "a quarter"), (1 / 3, "三分之一", "a third"), (0.4, "40%", "40%")])
def test_the_income_rule_of_a_closure_names_the_policys_own_share(fraction: float, zh: str, en: str) -> None:
    threshold = RuleThreshold(rule="income_cap", threshold=fraction)
    assert f"年收入的{zh}" in render(closed("zh-CN", "regulatory", "income_cap", threshold=threshold)).body
    english = render(closed("en", "regulatory", "income_cap", threshold=threshold)).body
    assert f"at most {en} of their annual income" in english and ("third" in english) == (fraction == 1 / 3)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("reason", sorted(CLOSURE_REASONS))
def test_every_closure_reason_renders_in_words_in_both_languages(reason: str, locale: str) -> None:
    category = CATEGORY_OF.get(reason, "strategy")
    disclosure = render(closed(locale, category, reason))
    assert disclosure.unknown_codes == ()
    assert CLOSURE_REASONS[reason](locale) in disclosure.body
    assert "_" not in disclosure.body.split(disclosure.reference)[0]  # no raw code shown


@pytest.mark.parametrize(
    "decision", [opened("zh-CN"), opened("en"), closed("zh-CN"), closed("en", "system", "scoring_failed")]
)
def test_every_message_carries_the_reference_and_the_versions_behind_it(decision: object) -> None:
    disclosure = render(decision)  # type: ignore[arg-type]
    assert disclosure.reference in disclosure.body
    assert "default@7" in disclosure.body
    assert ("german-woe@1+3f2a9c1b" in disclosure.body) == (decision.model_id is not None)  # type: ignore[attr-defined]
    assert any(word in disclosure.body for word in ("人工复核", "review by a person"))


def test_a_reference_is_short_quotable_and_stable_per_decision() -> None:
    one, again, other = opened(), opened(), opened(decision_id=uuid.UUID(int=7 << 100))
    assert re.fullmatch(r"CW-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", reference_for(one))
    assert reference_for(one) == reference_for(again) != reference_for(other)


def test_a_code_without_words_is_told_generically_and_reported() -> None:
    odd = closed("en").model_copy(
        update={"reasons": (Reason(code="R_SHOE_SIZE", characteristic="shoe_size", points_lost=3.0),)}
    )
    disclosure = render(odd)
    assert "R_SHOE_SIZE" in disclosure.unknown_codes
    assert "R_SHOE_SIZE" not in disclosure.body and "another factor in the assessment" in disclosure.body


@pytest.mark.parametrize("locale", LOCALES)
def test_the_longest_credit_closure_fits_the_notification_contract(locale: str) -> None:
    names = ("duration_months", "credit_amount", "installment_rate_pct", "existing_credits", "checking_account", "savings",
             "other_installment_plans", "other_debtors")  # fmt: skip
    codes = ("A_SHORTER_DURATION", "A_LOWER_AMOUNT", "A_LOWER_INSTALLMENT_RATE", "A_FEWER_EXISTING_CREDITS",
             "A_CHECKING_BALANCE", "A_BUILD_SAVINGS", "A_FEWER_INSTALLMENT_PLANS", "A_ADD_GUARANTOR")  # fmt: skip
    recourse = tuple(
        RecourseAction(code=code, characteristic=name, current="x", target="1000000", points_gain=1.0)
        for name, code in zip(names, codes, strict=True)
    )
    worst = closed(locale, reason="knockout_recent_overdue").model_copy(update={"recourse": recourse})
    disclosure = render(worst)
    limits = NotificationSent.model_fields
    assert len(disclosure.body) <= limits["body"].metadata[0].max_length
    assert len(disclosure.title) <= 200


def test_times_are_told_in_china_time_whatever_the_language() -> None:
    late_evening_utc = datetime(2026, 11, 28, 20, 30, tzinfo=UTC)  # 04:30 the next day in Beijing
    assert moment(late_evening_utc, "zh-CN") == "2026年11月29日 04:30(中国时间)"
    assert moment(late_evening_utc, "en") == "November 29, 2026, 4:30\u202fAM (China Time)"


def test_money_is_in_yuan_in_the_customers_format() -> None:
    assert money(1_234_500, "zh-CN") == "¥1,234,500"
    assert money(1_234_500, "en") == "CN¥1,234,500"
    assert money(2.5, "en", cents=True) == "CN¥2.50"
