"""Golden files: the exact messages a customer reads, per category and language.

A change to a template, to the shared wording or to Babel's locale data shows here as a diff to
review. To accept the new renders, regenerate the files and review them with `git diff`:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/notification/test_golden.py

Each file holds the title, a blank line, and the body.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from services.notification.disclosure import render, render_movement
from shared.contracts import Decision, Event
from tests.unit.notification.factories import closed, drawdown, opened

GOLDEN = Path(__file__).parent / "golden"

CASES: dict[str, Callable[[str], Decision | Event]] = {
    "opened": lambda locale: opened(locale),
    "opened_income_cap": lambda locale: opened(locale, bound_by="income_cap"),
    "closed_credit": lambda locale: closed(locale),
    "closed_credit_knockout": lambda locale: closed(locale, reason="knockout_recent_overdue"),
    "closed_strategy": lambda locale: closed(locale, "strategy", "region_paused"),
    "closed_system": lambda locale: closed(locale, "system", "scoring_failed"),
    "closed_regulatory": lambda locale: closed(locale, "regulatory", "income_cap"),
    "drawdown_approved": lambda locale: drawdown(locale),
    "drawdown_above_available": lambda locale: drawdown(locale, "above_available"),
    "drawdown_window_closed": lambda locale: drawdown(locale, "window_closed"),
    "drawdown_balance_cap": lambda locale: drawdown(locale, "balance_cap"),
    "repayment_applied": lambda locale: drawdown(locale, "repaid"),
}


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_message_matches_its_golden_file(case: str, locale: str) -> None:
    event = CASES[case](locale)
    disclosure = render(event) if isinstance(event, Decision) else render_movement(event)  # type: ignore[arg-type]
    rendered = f"{disclosure.title}\n\n{disclosure.body}\n"
    path = GOLDEN / f"{case}.{locale}.txt"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}: run with UPDATE_GOLDEN=1 and review it"
    assert rendered == path.read_text(encoding="utf-8")
