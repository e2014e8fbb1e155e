"""The German Credit applications scored here and laid out over one budget period, as if recorded.

`creditwindow policy optimise --source germancredit` (registered by the dev plugin, `devtools.cli`)
optimises on these instead of `credit.scores`: no broker needed, and the same 1,000 applications
every time. German Credit has no arrival times, so the rows arrive in file order, evenly spread over
the budget period (of the individual segment's budget; 30 days when it has none) that contains
`REFERENCE` in the policy's time zone: the application at place *i* of *N* arrives when a share
(i + 1/2) / N of the period has gone by.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devtools.germancredit import applications
from services.policy.control.document import PolicyDocument
from services.policy.windows.periods import period_span
from services.scoring.assessment import assess
from services.scoring.ports import Scorer
from services.scoring.scorecard import Scorecard
from shared.contracts import ScoreComputed
from shared.settings import Settings

__all__ = ["REFERENCE", "german_credit_scores", "scored_period", "spread_over_period"]

# A fixed instant, so that every run lays the applications out in the same period.
REFERENCE = datetime(2026, 1, 15, tzinfo=UTC)


def spread_over_period(scores: list[ScoreComputed], policy: PolicyDocument, at: datetime = REFERENCE) -> list[ScoreComputed]:
    """The scores in their order, re-timed evenly over the budget period that contains `at`."""
    budget = policy.budgets.get("individual")  # type: ignore[call-overload]
    if budget is not None and budget.period is not None:
        span = period_span(budget.period, at, policy.zone)
        start, length = span.start, span.end - span.start
    else:
        start, length = at, timedelta(days=30)
    n = len(scores)
    return [s.model_copy(update={"occurred_at": start + length * ((i + 0.5) / n)}) for i, s in enumerate(scores)]


def scored_period(scorer: Scorer, policy: PolicyDocument, *, run_id: str = "optimise") -> list[ScoreComputed]:
    """The 1,000 applications, scored as the scoring service would, over one budget period."""
    return spread_over_period([assess(application, scorer, REFERENCE) for application in applications(run_id)], policy)


def german_credit_scores(policy: PolicyDocument, settings: Settings) -> tuple[str, list[ScoreComputed]]:
    """The `germancredit` source of `policy optimise`: the configured scorecard on the German Credit rows."""
    scorecard = Scorecard.load(settings.model_path)
    scores = scored_period(scorecard, policy)
    first, last = scores[0].occurred_at, scores[-1].occurred_at
    return (
        f"German Credit: {len(scores):,} applications scored with {scorecard.model_id}, "
        f"spread over {first:%Y-%m-%d} – {last:%Y-%m-%d}",
        scores,
    )
