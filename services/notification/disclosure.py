"""The disclosure a customer receives: the result and its basis, in their language. Pure.

First version: plain text composed from the shared wording (`shared.reasons`).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts import Decision, WindowClosed, WindowOpened
from shared.reasons import ADVICE, BOUNDS, CATEGORIES, CLOSURE_REASONS, REASONS

__all__ = ["Disclosure", "reference_for", "render"]


@dataclass(frozen=True, slots=True)
class Disclosure:
    title: str
    body: str
    reference: str


def reference_for(decision: Decision) -> str:
    """A short, quotable decision reference (from the decision id)."""
    hex_id = decision.decision_id.hex.upper()
    return f"CW-{hex_id[:4]}-{hex_id[4:8]}"


def _t(texts: dict, code: str, locale: str) -> str:
    text = texts.get(code)
    return text(locale) if text is not None else code


def render(decision: Decision) -> Disclosure:
    locale = decision.locale
    en = locale == "en"
    reference = reference_for(decision)
    footer = (
        f"Reference {reference} (policy {decision.policy_version}, model {decision.model_id or '-'}): "
        "quote it to ask for an explanation or a human review."
        if en
        else f"决定编号 {reference}(策略 {decision.policy_version},模型 {decision.model_id or '-'}):可凭此编号申请解释或人工复核。"
    )
    if isinstance(decision, WindowOpened):
        bound = _t(BOUNDS, decision.basis.bound_by, locale)
        valid = decision.valid_until.date().isoformat()
        if en:
            title = "Your borrowing window is open"
            body = (
                f"Limit CNY {decision.limit:,} at {decision.apr:.2%} a year ({decision.daily_rate:.4%} a day), "
                f"open until {valid}. Your limit was set by {bound}."
            )
        else:
            title = "您的借款额度已开通"
            body = f"额度 {decision.limit:,} 元,年化利率 {decision.apr:.2%}(日利率 {decision.daily_rate:.4%}),有效期至 {valid}。额度依据:{bound}。"
        return Disclosure(title, f"{body}\n{footer}", reference)

    assert isinstance(decision, WindowClosed)
    category = _t(CATEGORIES, decision.category, locale)
    reason = _t(CLOSURE_REASONS, decision.reason, locale)
    lines = [
        (f"This is {category}: {reason}." if en else f"原因类别:{category}。{reason}。"),
    ]
    for item in decision.reasons[:4]:
        lines.append(f"- {_t(REASONS, item.code, locale)}")
    for action in decision.recourse:
        advice = ADVICE.get(action.code)
        if advice is not None:
            lines.append(f"* {advice.text(locale).format(target=action.target)} ({advice.typical(locale)})")
    if decision.retry_after is not None:
        when = decision.retry_after.strftime("%Y-%m-%d %H:%M UTC")
        lines.append(f"You can try again after {when}." if en else f"您可在 {when} 之后再次申请。")
    title = "Your borrowing window is not open" if en else "您的借款额度暂未开通"
    return Disclosure(title, "\n".join(lines) + f"\n{footer}", reference)
