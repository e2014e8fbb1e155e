"""The disclosure a customer receives: the result and its basis, in their language. Pure.

`compose` turns a decision into a `View`: every figure already formatted for the customer's locale
with Babel (money in CNY, percentages, dates in China time) and every code already put into words
from the shared wording (`shared.reasons`). `render` pours the view into the Jinja2 template of the
decision's kind and locale (`templates/<kind>.<locale>.txt.j2`), which also sets the title.

What each kind says (issue 5):

- opened: the limit, the price (APR, and the daily rate with the interest on 10,000 CNY a day, as
  customers in China are used to reading it), how long the window stays open, what set the limit;
- closed, credit: the closure rule in words with its threshold (more than 3 hard inquiries in 3
  months; an overdue in the last 12 months, and when it stops counting; the score's cut-off), where
  the policy allows the score and grade, at most four principal reasons, and for each what to do and
  how long it usually takes (the scorecard's concrete recourse where it has one for that reason, the
  shared advice otherwise), plus any other change of the recourse plan;
- closed, strategy or system: that it is not about their credit, and what happens next (a
  maintenance closure is decided again by itself; an application that could not be read or scored
  must be made again, and the message says so); a suspended customer reads a neutral text;
- closed, regulatory: the rule that bounds the limit, with the policy's own share or cap;
- opened: what bounded the limit with the real fraction, and any programme or cycle factor;
- a closure of a small-business owner (not a system one): one sentence on other financing channels;
- a decision made on review: which decision a person reviewed, and their note;
- every message: a quotable decision reference to ask for an explanation or a human review, and
  the policy and model versions behind the decision.
- drawdowns (issue 16): approved, the amount lent, what is owed now and what is still available;
  refused, the category in words, why (a closed window's own reason too), and what is available;
  a repayment, what it took off and what is owed now (`render_movement`).

Notices that are not decisions (`render_notice`): a decision delayed by an outage (told once:
"a technical problem, not your credit; we will decide as soon as it clears"), a review received,
and a review upheld (an overturn is told by the new decision itself).

No personal data enters a message beyond what the decision itself carries (no income, no name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from fractions import Fraction
from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

from babel import Locale
from babel.dates import format_date, format_time, get_timezone, get_timezone_name
from babel.numbers import format_currency, format_percent
from babel.units import format_unit
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template
from jinja2.utils import concat

from shared.contracts import (
    Decision,
    DecisionDelayed,
    DrawdownApproved,
    LendingOutcome,
    RepaymentApplied,
    ReviewConcluded,
    ReviewOpened,
    RuleThreshold,
    WindowClosed,
    WindowOpened,
)
from shared.reasons import (
    ADVICE,
    ALTERNATIVE_FINANCING,
    BOUNDS,
    CATEGORIES,
    CLOSURE_REASONS,
    DRAWDOWN_REASONS,
    EDUCATION,
    PROGRAMMES,
    REASON_ADVICE,
    REASONS,
    REGULATORY_RULES,
    RULE_THRESHOLDS,
    SYSTEM_NEXT_STEP,
    Advice,
    Text,
    reason_code,
)
from shared.references import reference_of

__all__ = [
    "CLOSURE_ADVICE",
    "MAX_REASONS",
    "TEMPLATES",
    "Disclosure",
    "Notice",
    "NoticeView",
    "Step",
    "View",
    "compose",
    "compose_notice",
    "daily_percent",
    "duration",
    "moment",
    "money",
    "percent",
    "reference_for",
    "render",
    "render_movement",
    "render_notice",
    "tells",
]

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_REASONS = 4
# Customers are in China: times are shown in China time whatever the language.
TIME_ZONE: tzinfo = get_timezone("Asia/Shanghai")
BABEL_LOCALES = {"zh-CN": "zh_Hans_CN", "en": "en"}
# A knock-out names its own cause: the advice for it comes first.
CLOSURE_ADVICE = {"knockout_recent_overdue": "A_WAIT_OVERDUE", "knockout_inquiries": "A_FEWER_INQUIRIES"}
# Advice whose target is an amount of money: its figures are shown as CNY.
_MONEY_ADVICE = frozenset({"A_LOWER_AMOUNT", "A_BUILD_SAVINGS", "A_CHECKING_BALANCE"})
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_UNKNOWN = Text("其他评估因素", "another factor in the assessment")

Kind = Literal[
    "opened", "closed_credit", "closed_strategy", "closed_system", "closed_regulatory",
    "drawdown_approved", "drawdown_refused", "repayment_applied",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Disclosure:
    """A rendered message, and any code that had no wording (shown generically, to be logged)."""

    title: str
    body: str
    reference: str
    unknown_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """One thing to tell: a factor or action in words, what to do, and how long it usually takes."""

    text: str
    advice: str = ""
    typical: str = ""
    in_plan: bool = False


@dataclass(frozen=True, slots=True)
class View:
    """Everything a template shows, already in the customer's words and number formats."""

    kind: Kind
    locale: str
    reference: str
    policy_version: str
    model_id: str | None
    trigger: str
    # opened
    limit: str = ""
    apr: str = ""
    daily_rate: str = ""
    interest_per_10k_per_day: str = ""
    ten_thousand: str = ""
    open_for: str = ""
    valid_until: str = ""
    bound_by: str = ""
    bound: str = ""
    grade: str = ""
    absolute_cap: str = ""
    # closed
    category: str = ""
    reason: str = ""
    reason_code: str = ""
    lead_advice: Step | None = None
    factors: tuple[Step, ...] = ()
    other_changes: tuple[Step, ...] = ()
    has_recourse: bool = False
    rule: str = ""
    retry_after: str = ""
    closes_reference: str = ""
    # drawdowns and repayments
    amount: str = ""
    balance: str = ""
    available: str = ""
    applied: str = ""
    owes: bool = False  # a balance is still owed
    window_reason: str = ""
    # credit education and what comes next
    threshold: str = ""
    score: str = ""
    alternatives: str = ""
    programme: str = ""
    cycle: str = ""
    next_step: str = ""
    # a decision made on review
    reviewed_reference: str = ""
    review_note: str = ""
    unknown_codes: tuple[str, ...] = field(default=())


def reference_for(decision: Decision) -> str:
    """A quotable decision reference (`shared.references`): the first 60 bits of the decision id in
    Crockford base32, twelve characters without look-alikes, so it survives being read out."""
    return reference_of(decision.decision_id)


# --- formatting (Babel) ----------------------------------------------------------------------------


@cache
def _babel(locale: str) -> Locale:
    return Locale.parse(BABEL_LOCALES.get(locale, "zh_Hans_CN"))


@cache
def _zone_name(locale: str) -> str:
    return get_timezone_name(TIME_ZONE, "long", locale=_babel(locale))


# Babel re-reads its locale data and re-parses a pattern on every call, which made formatting most
# of a notice's cost. The figures a notice shows come from small sets (limits in steps of 100, a
# few prices, whole days, a minute of a day), so each formatter keeps what it formatted: the same
# arguments give the same text (`typed`: 1 and 1.0 are formatted apart, as Babel may format them).
_FORMATTED = 4096


def money(amount: float, locale: str, *, cents: bool = False) -> str:
    """CNY in the customer's locale: ¥20,000 (zh-CN), CN¥20,000 (en); cents when they matter."""
    return _money(amount, locale, cents)


@lru_cache(maxsize=_FORMATTED, typed=True)
def _money(amount: float, locale: str, cents: bool) -> str:
    if cents:
        return format_currency(amount, "CNY", locale=_babel(locale))
    return format_currency(amount, "CNY", format="¤#,##0", currency_digits=False, locale=_babel(locale))


@lru_cache(maxsize=_FORMATTED, typed=True)
def percent(rate: float, locale: str, *, digits: int = 2) -> str:
    pattern = "#,##0." + "0" * digits + "%"
    return format_percent(rate, format=pattern, locale=_babel(locale))


@lru_cache(maxsize=_FORMATTED, typed=True)
def daily_percent(rate: float, locale: str) -> str:
    # Daily rates are tiny: show up to four decimals of a percent, at least two (0.02%, 0.025%).
    return format_percent(rate, format="0.00##%", locale=_babel(locale))


def moment(when: datetime, locale: str) -> str:
    """A date and time in China time, with the zone named: 2026年12月28日 20:00(中国时间)."""
    # Shown to the minute: every moment of one minute reads the same (kept per minute).
    return _moment(when.astimezone(TIME_ZONE).replace(second=0, microsecond=0), locale)


@lru_cache(maxsize=_FORMATTED)
def _moment(local: datetime, locale: str) -> str:
    babel_locale = _babel(locale)
    day = format_date(local.date(), "long", locale=babel_locale)
    clock = format_time(local, "short", tzinfo=TIME_ZONE, locale=babel_locale)
    zone = _zone_name(locale)
    return f"{day} {clock}({zone})" if locale == "zh-CN" else f"{day}, {clock} ({zone})"


def duration(span: timedelta, locale: str) -> str:
    """A whole number of days (or hours, under two days) in words: 30天, 30 days."""
    return _hours(max(0, round(span.total_seconds() / 3600)), locale)


@lru_cache(maxsize=_FORMATTED)
def _hours(hours: int, locale: str) -> str:
    babel_locale = _babel(locale)
    if hours < 48:
        return format_unit(hours, "duration-hour", locale=babel_locale)
    return format_unit(round(hours / 24), "duration-day", locale=babel_locale)


_SHARES: dict[Fraction, tuple[str, str]] = {
    Fraction(1, 2): ("二分之一", "half"),
    Fraction(1, 3): ("三分之一", "a third"),
    Fraction(1, 4): ("四分之一", "a quarter"),
    Fraction(1, 5): ("五分之一", "a fifth"),
}


@lru_cache(maxsize=_FORMATTED, typed=True)
def share_of_income(fraction: float | None, locale: str) -> str:
    """The income rule's share in words: 三分之一 / a third; a share without a name as a percentage.

    A decision of schema version 1 does not carry the fraction: the policy's default, a third.
    """
    exact = Fraction(fraction if fraction is not None else 1 / 3).limit_denominator(100)
    named = _SHARES.get(exact)
    if named is not None:
        return named[1] if locale == "en" else named[0]
    return format_percent(float(exact), format="#,##0.##%", locale=_babel(locale))


def _number(value: float) -> str:
    # A threshold as people say it: 3, not 3.0; 518.5 stays.
    return f"{value:g}"


def threshold_text(threshold: RuleThreshold | None, locale: str) -> str:
    """The closing rule with its threshold, in the customer's words ('' for a rule without one)."""
    if threshold is None:
        return ""
    text = RULE_THRESHOLDS.get(f"{threshold.rule}:none") if threshold.threshold == 0 else None
    text = text or RULE_THRESHOLDS.get(threshold.rule)
    if text is None:
        return ""
    figure = money(threshold.threshold, locale) if threshold.rule == "below_minimum_limit" else _number(threshold.threshold)
    value = _number(threshold.value) if threshold.value is not None else "-"
    return text(locale).format(threshold=figure, value=value, months=threshold.period_months or "")


def score_text(decision: Decision, locale: str) -> str:
    """The customer's points and grade (with the cut-off when the rule was the score's), where the policy allows."""
    points, grade = getattr(decision, "points", None), getattr(decision, "grade", None)
    if not decision.score_disclosed or points is None or not grade:
        return ""
    threshold = getattr(decision, "threshold", None)
    if threshold is not None and threshold.rule == "score_below_cutoff":
        return EDUCATION["score_against_cutoff"](locale).format(points=round(points), cutoff=_number(threshold.threshold), grade=grade)
    return EDUCATION["score"](locale).format(points=round(points), grade=grade)


def regulatory_rule(decision: WindowClosed, words: _Words) -> str:
    threshold = decision.threshold
    share = share_of_income(threshold.threshold if threshold and decision.reason == "income_cap" else None, words.locale)
    cap = money(threshold.threshold, words.locale) if threshold and decision.reason == "absolute_cap" else ""
    if decision.reason == "absolute_cap" and not cap:
        return Text(
            "监管规定:每人在本平台的借款余额不得超过统一的绝对上限。",
            "The rule: a person's balance with us may not exceed a fixed absolute cap that applies to everyone.",
        )(words.locale)  # a decision recorded before the cap was carried
    return words.text(REGULATORY_RULES, decision.reason).format(share=share, cap=cap)


# --- composing ---------------------------------------------------------------------------------------


class _Words:
    """Looks up wording in one locale and keeps the codes that had none."""

    def __init__(self, locale: str) -> None:
        self.locale = locale
        self.unknown: list[str] = []

    def text(self, table: dict[str, Text], code: str) -> str:
        found = table.get(code)
        if found is None:
            self.unknown.append(code)
            return _UNKNOWN(self.locale)
        return found(self.locale)

    def advice(self, code: str, target: str, *, in_plan: bool) -> Step | None:
        advice: Advice | None = ADVICE.get(code)
        if advice is None:
            self.unknown.append(code)
            return None
        shown = _NUMBER.sub(lambda m: money(float(m.group()), self.locale), target) if code in _MONEY_ADVICE else target
        return Step(advice.text(self.locale).format(target=shown), typical=advice.typical(self.locale), in_plan=in_plan)


def _factors(decision: WindowClosed, words: _Words) -> tuple[tuple[Step, ...], tuple[Step, ...]]:
    """The principal reasons with what to do for each, and the recourse changes not yet named."""
    by_reason = {reason_code(action.characteristic): action for action in decision.recourse}
    used: set[str] = set()
    factors = []
    for reason in decision.reasons[:MAX_REASONS]:
        action = by_reason.get(reason.code)
        concrete = words.advice(action.code, action.target, in_plan=True) if action is not None else None
        if concrete is not None:
            used.add(reason.code)
            advice, typical, in_plan = concrete.text, concrete.typical, concrete.in_plan
        else:
            generic = REASON_ADVICE.get(reason.code)
            advice = generic.text(words.locale) if generic else ""
            typical = generic.typical(words.locale) if generic else ""
            in_plan = False
        factors.append(Step(words.text(REASONS, reason.code), advice, typical, in_plan))
    others = []
    for action in decision.recourse:
        if reason_code(action.characteristic) in used:
            continue
        step = words.advice(action.code, action.target, in_plan=True)
        if step is not None:
            others.append(step)
    return tuple(factors), tuple(others)


def compose(decision: Decision) -> View:
    """The view of a decision: what the customer is told, formatted for their locale."""
    locale = decision.locale
    words = _Words(locale)
    common = {
        "locale": locale,
        "reference": reference_for(decision),
        "policy_version": decision.policy_version,
        "model_id": decision.model_id,
        "trigger": decision.trigger,
        "reviewed_reference": reference_of(decision.reviewed_decision_id) if decision.reviewed_decision_id else "",
        "review_note": decision.review_note or "",
    }
    if isinstance(decision, WindowOpened):
        basis = decision.basis
        view = View(
            kind="opened",
            limit=money(decision.limit, locale),
            apr=percent(decision.apr, locale),
            daily_rate=daily_percent(decision.daily_rate, locale),
            interest_per_10k_per_day=money(10_000 * decision.daily_rate, locale, cents=True),
            ten_thousand=money(10_000, locale),
            open_for=duration(decision.valid_until - decision.occurred_at, locale),
            valid_until=moment(decision.valid_until, locale),
            bound_by=basis.bound_by,
            bound=words.text(BOUNDS, basis.bound_by).format(share=share_of_income(basis.income_fraction, locale)),
            grade=decision.grade,
            absolute_cap=money(basis.absolute_cap, locale) if basis.absolute_cap is not None else "",
            score=score_text(decision, locale),
            programme=_programme(basis.programme, basis.programme_boost, locale),
            cycle=_cycle(basis.cycle_factor, locale),
            **common,  # type: ignore[arg-type]
        )
        return _with_unknown(view, words)

    if not isinstance(decision, WindowClosed):
        raise TypeError(f"not a window decision: {type(decision).__name__}")
    kind: Kind = {
        "credit": "closed_credit",
        "strategy": "closed_strategy",
        "system": "closed_system",
        "regulatory": "closed_regulatory",
    }[decision.category]  # type: ignore[assignment]
    factors, others = _factors(decision, words) if decision.category == "credit" else ((), ())
    lead_code = CLOSURE_ADVICE.get(decision.reason)
    retry_after = moment(decision.retry_after, locale) if decision.retry_after else ""
    view = View(
        kind=kind,
        category=words.text(CATEGORIES, decision.category),
        reason=words.text(CLOSURE_REASONS, decision.reason),
        reason_code=decision.reason,
        lead_advice=words.advice(lead_code, "", in_plan=False) if lead_code else None,
        factors=factors,
        other_changes=others,
        has_recourse=any(step.in_plan for step in (*factors, *others)),
        rule=regulatory_rule(decision, words) if decision.category == "regulatory" else "",
        retry_after=retry_after,
        closes_reference=reference_of(decision.closes_decision_id) if decision.closes_decision_id else "",
        threshold=threshold_text(decision.threshold, locale) if decision.category == "credit" else "",
        score=score_text(decision, locale) if decision.category == "credit" else "",
        alternatives=ALTERNATIVE_FINANCING(locale) if decision.segment == "small_business" and decision.category != "system" else "",
        next_step=_next_step(decision, retry_after, locale) if decision.category == "system" else "",
        **common,  # type: ignore[arg-type]
    )
    return _with_unknown(view, words)


def _next_step(decision: WindowClosed, retry_after: str, locale: str) -> str:
    text = SYSTEM_NEXT_STEP.get(decision.reason) or SYSTEM_NEXT_STEP[""]
    if "{retry_after}" in text.en and not retry_after:
        return ""
    return text(locale).format(retry_after=retry_after)


def _programme(name: str | None, boost: float, locale: str) -> str:
    if not name:
        return ""
    words = (PROGRAMMES.get(name) or PROGRAMMES[""])(locale)
    return EDUCATION["programme"](locale).format(programme=words, boost=_number(boost))


def _cycle(factor: float, locale: str) -> str:
    if factor == 1:
        return ""
    direction = EDUCATION["cycle_tighter" if factor < 1 else "cycle_looser"](locale)
    return EDUCATION["cycle"](locale).format(factor=_number(factor), direction=direction)


def _with_unknown(view: View, words: _Words) -> View:
    if not words.unknown:
        return view
    return replace(view, unknown_codes=tuple(dict.fromkeys(words.unknown)))


# --- rendering (Jinja2) -------------------------------------------------------------------------------


@cache
def _environment() -> Environment:
    # Plain text for an inbox and for partners' apps: nothing to HTML-escape here; the partner's
    # app escapes for its own medium.
    # The templates ship with the code: no process needs to see them change, so Jinja2 does not
    # look at their files again on every render (auto_reload stats each one, includes too).
    # Every template here is plain text (*.txt.j2), which the former per-name choice
    # (select_autoescape for html/xml) never escaped either: autoescape off outright compiles to plainer
    # code (no escape-or-not test per expression, no call per context). An HTML template would need an
    # environment of its own, with autoescape on.
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
    )
    # No template uses Jinja2's default globals (range, dict, namespace, cycler, joiner, lipsum; a
    # template that did would fail on StrictUndefined, and the golden files would show it). Without
    # them, each message's context and each include's is not built by copying them (a ChainMap walked
    # twice per context, three contexts per message).
    environment.globals.clear()
    return environment


@cache
def _template(kind: str, locale: str) -> Template:
    return _environment().get_template(f"{kind}.{locale}.txt.j2")


def compose_movement(event: LendingOutcome) -> View:
    """The view of a drawdown outcome or a repayment, formatted for the customer's locale."""
    locale = event.locale
    words = _Words(locale)
    common = {
        "locale": locale,
        "reference": reference_of(event.event_id),
        "policy_version": getattr(event, "policy_version", ""),
        "model_id": None,
        "trigger": "drawdown",
        "amount": money(event.amount, locale),
        "balance": money(event.balance, locale),
        "owes": event.balance > 0,
    }
    if isinstance(event, RepaymentApplied):
        view = View(kind="repayment_applied", applied=money(event.applied, locale), **common)  # type: ignore[arg-type]
    elif isinstance(event, DrawdownApproved):
        view = View(kind="drawdown_approved", available=money(event.available, locale), limit=money(event.limit, locale), **common)  # type: ignore[arg-type]
    else:
        view = View(
            kind="drawdown_refused",
            category=words.text(CATEGORIES, event.category),
            reason=words.text(DRAWDOWN_REASONS, event.reason),
            reason_code=event.reason,
            window_reason=words.text(CLOSURE_REASONS, event.window_reason) if event.window_reason else "",
            rule=words.text(REGULATORY_RULES, "balance_cap") if event.reason == "balance_cap" else "",
            available=money(event.available, locale),
            limit=money(event.limit, locale),
            **common,  # type: ignore[arg-type]
        )
    return _with_unknown(view, words)


def render(decision: Decision) -> Disclosure:
    """The disclosure of a decision in the customer's language, from the template of its kind."""
    return _render(compose(decision))


def render_movement(event: LendingOutcome) -> Disclosure:
    """The message about a drawdown outcome or a repayment, in the customer's language."""
    return _render(compose_movement(event))


def _render(view: View) -> Disclosure:
    template = _template(view.kind, view.locale)
    # What `template.make_module(...)` does (body, and the title the template sets), without building
    # a module object per message.
    context = template.new_context({"v": view})
    text = concat(template.root_render_func(context))
    body = "\n".join(line.rstrip() for line in text.strip().splitlines())
    return Disclosure(
        title=str(context.vars["title"]).strip(), body=body, reference=view.reference, unknown_codes=view.unknown_codes
    )


# --- notices that are not decisions -------------------------------------------------------------------

NoticeKind = Literal["delayed", "review_received", "review_upheld"]
Notice = DecisionDelayed | ReviewOpened | ReviewConcluded


@dataclass(frozen=True, slots=True)
class NoticeView:
    """What a notice template shows."""

    kind: NoticeKind
    locale: str
    reference: str
    category: str = ""
    waiting_since: str = ""
    respond_by: str = ""
    reviewed_outcome: str = ""
    note: str = ""


def compose_notice(notice: Notice) -> NoticeView:
    locale = notice.locale
    if isinstance(notice, DecisionDelayed):
        return NoticeView(
            "delayed", locale, reference_of(notice.decision_id), category=CATEGORIES["system"](locale),
            waiting_since=moment(notice.waiting_since, locale),
        )  # fmt: skip
    if isinstance(notice, ReviewOpened):
        return NoticeView("review_received", locale, notice.reference, respond_by=moment(notice.respond_by, locale), reviewed_outcome=notice.reviewed_outcome)
    if isinstance(notice, ReviewConcluded) and notice.outcome == "upheld":
        return NoticeView("review_upheld", locale, notice.reference, reviewed_outcome=notice.reviewed_outcome, note=notice.note)
    raise TypeError(f"nothing to tell of {type(notice).__name__} ({getattr(notice, 'outcome', '')})")


def tells(notice: Notice) -> bool:
    """Whether a notice is told to the customer (an overturn is told by its new decision instead)."""
    return not (isinstance(notice, ReviewConcluded) and notice.outcome != "upheld")


def render_notice(notice: Notice) -> Disclosure:
    """A notice in the customer's language, from `templates/<kind>.<locale>.txt.j2`."""
    view = compose_notice(notice)
    template = _environment().get_template(f"{view.kind}.{view.locale}.txt.j2")
    module = template.make_module({"v": view})
    body = "\n".join(line.rstrip() for line in str(module).strip().splitlines())
    return Disclosure(title=str(module.title).strip(), body=body, reference=view.reference)
