""""How we decide": the active policy as a page customers can read (加强信用教育). Pure.

`render_markdown(policy, locale)` turns a `PolicyDocument` into Markdown, in Chinese or English,
from `templates/how_we_decide.<locale>.md.j2`: the order of the rules, the knock-outs, the score
cut-offs, limits and prices by grade, the regulatory caps, the cycle factor, the programmes, the
pauses and maintenance windows, the budget, and the customer's rights (an explanation on request,
a review by a person, a notice when an outage delays a decision). Every figure comes from the
document, so the published explanation cannot drift from the policy the fleet runs
(`creditwindow policy explain`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.notification.disclosure import duration, moment, money, percent, share_of_income
from services.policy.control.document import PolicyDocument
from shared.contracts import DEFAULT_LOCALE
from shared.reasons import LOCALES, PROGRAMMES, SEGMENT_NAMES

__all__ = ["TEMPLATES", "render_markdown"]

TEMPLATES = Path(__file__).resolve().parent / "templates"




@dataclass(frozen=True, slots=True)
class _Grade:
    grade: str
    multiple: str
    max_limit: str
    apr: str


@cache
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _view(policy: PolicyDocument, locale: str) -> dict[str, Any]:
    def segment(name: str) -> str:
        return SEGMENT_NAMES[name](locale) if name in SEGMENT_NAMES else name

    care = policy.customer_care
    return {
        "label": policy.label,
        "cutoffs": [(segment(name), f"{points:g}") for name, points in policy.cutoffs.items()],
        "max_overdue": policy.knockouts.max_overdue_12m,
        "max_inquiries": policy.knockouts.max_inquiries_3m,
        "grades": [
            _Grade(grade, percent(terms.income_multiple, locale, digits=0), money(terms.max_limit, locale), percent(terms.apr, locale))
            for grade, terms in sorted(policy.grades.items())
        ],
        "share": share_of_income(policy.regulatory.income_fraction, locale),
        "absolute_cap": money(policy.regulatory.absolute_cap, locale),
        "cycle_factor": f"{policy.cycle_factor:g}",
        "cycle_direction": "tighter" if policy.cycle_factor < 1 else "looser" if policy.cycle_factor > 1 else "neutral",
        "programmes": [
            ((PROGRAMMES.get(p.name) or PROGRAMMES[""])(locale), segment(p.segment), f"{p.boost:g}", money(p.budget, locale))
            for p in policy.programmes
        ],
        "programme_dates": [_dates(p.start, p.end, locale) for p in policy.programmes],
        "cutoff_raise": f"{policy.cycle.cutoff_raise:g}" if policy.cycle.cutoff_raise else "",
        "multipliers": [
            (kind, segment(name) if kind == "segment" else name, f"{factor:g}")
            for kind, table in (("segment", policy.multipliers.segments), ("region", policy.multipliers.regions), ("channel", policy.multipliers.channels))
            for name, factor in table.items()
            if factor < 1
        ],
        "budget_periods": [(segment(name), _PERIODS[locale].get(b.period, b.period)) for name, b in policy.budgets.items()],
        "scheduled_pauses": [
            ([segment(x) for x in w.segments], list(w.regions), list(w.channels), _dates(w.start, w.end, locale)) for w in policy.pauses.scheduled
        ],
        "paused_segments": [segment(s) for s in policy.pauses.segments],
        "paused_regions": list(policy.pauses.regions),
        "paused_channels": list(policy.pauses.channels),
        "maintenance": [(moment(w.start, locale), moment(w.end, locale)) for w in policy.maintenance],
        "min_limit": money(policy.limits.min_limit, locale),
        "round_to": money(policy.limits.round_to, locale),
        "cap_at_requested": policy.limits.cap_at_requested,
        "validity": duration(policy.timing.window_validity, locale),
        "strategy_retry": duration(policy.timing.strategy_retry, locale),
        "system_retry": duration(policy.timing.system_retry, locale),
        "pacing": policy.pacing.enabled,
        "show_score": care.show_score,
        "review_within": duration(care.review_within, locale),
        "delay_notice_after": duration(care.delay_notice_after, locale) if care.delay_notice_after.total_seconds() >= 3600 else _minutes(care.delay_notice_after.total_seconds(), locale),
        "lgd": percent(policy.pricing.lgd, locale, digits=0),
        "funding_cost": percent(policy.pricing.funding_cost, locale, digits=1),
    }


_PERIODS = {
    "en": {"P1D": "day", "P1W": "week", "P1M": "month", "P1Q": "quarter", "P1Y": "year"},
    "zh-CN": {"P1D": "日", "P1W": "周", "P1M": "月", "P1Q": "季度", "P1Y": "年"},
}


def _dates(start: datetime | None, end: datetime | None, locale: str) -> str:
    """When a dated programme or pause is in force, in words ("" when always)."""
    zh = locale == "zh-CN"
    if start and end:
        return f"{moment(start, locale)} 至 {moment(end, locale)}" if zh else f"from {moment(start, locale)} to {moment(end, locale)}"
    if start:
        return f"自 {moment(start, locale)} 起" if zh else f"from {moment(start, locale)}"
    if end:
        return f"至 {moment(end, locale)} 止" if zh else f"until {moment(end, locale)}"
    return ""


def _minutes(seconds: float, locale: str) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} 分钟" if locale == "zh-CN" else f"{minutes} minute{'s' if minutes != 1 else ''}"


def render_markdown(policy: PolicyDocument, locale: str = DEFAULT_LOCALE) -> str:
    """The policy as "how we decide", Markdown, in `locale` (zh-CN or en)."""
    if locale not in LOCALES:
        raise ValueError(f"locale {locale!r}: one of {', '.join(LOCALES)}")
    return _environment().get_template(f"how_we_decide.{locale}.md.j2").render(v=_view(policy, locale))
