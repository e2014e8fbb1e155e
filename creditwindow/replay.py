"""Recorded scores through a policy, on a book of their own: what `creditwindow simulate` compares. Pure.

The scores are replayed in the order they happened through the policy's rules (`decisions.propose`)
and the portfolio book (`book.Book`, the ledger the fleet keeps in Redis): budgets fill as windows
open, a customer's new decision supersedes (and releases) the previous window, windows expire at
their `valid_until`. Nothing is published and Redis is not touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from creditwindow.outcomes import Outcome
from services.policy.control.document import PolicyDocument
from services.policy.windows.book import Book
from services.policy.windows.decisions import Proposal, book_request, close_request, propose
from services.policy.windows.rules import Close, Offer
from shared.contracts import ScoreComputed

__all__ = ["first_scores", "replay_proposals", "replay_scores"]


def first_scores(scores: Iterable[ScoreComputed]) -> list[ScoreComputed]:
    """Each application's first score (a redelivered score is the same application), in the order scored."""
    found: list[ScoreComputed] = []
    seen: set[str] = set()
    for score in sorted(scores, key=lambda s: s.occurred_at):
        if score.application_id not in seen:
            seen.add(score.application_id)
            found.append(score)
    return found


def replay_scores(scores: Iterable[ScoreComputed], policy: PolicyDocument, *, on_each: Callable[[], None] | None = None) -> list[Outcome]:
    """Decide every application once (first score of each), in the order scored, on an empty book."""
    return replay_proposals([propose(score, policy, score.occurred_at) for score in first_scores(scores)], policy, on_each=on_each)


def replay_proposals(proposals: Sequence[Proposal], policy: PolicyDocument, *, on_each: Callable[[], None] | None = None) -> list[Outcome]:
    """The book's half of `replay_scores`: the rules' proposals (in the order scored) through the
    portfolio book under `policy`'s budgets and pacing. The rules read no budget and no pacing, so
    proposals made once serve every budget tried (`creditwindow policy optimise`)."""
    book = Book()
    outcomes: list[Outcome] = []
    for proposal in proposals:
        score = proposal.score
        now = score.occurred_at
        for record in book.due_expiries(int(now.timestamp() * 1000), limit=len(book.state.expiry)):
            book.close(close_request(record, trigger="expiry", reason="expired", now=now))
        answer = book.post(*book_request(proposal, policy))
        segment = score.facts.segment if score.facts else "unknown"
        verdict = proposal.verdict
        if isinstance(verdict, Offer) and answer.granted > 0:
            bound_by = "segment_budget" if answer.budget_bound else verdict.basis.bound_by
            outcome = Outcome(score.application_id, score.customer_id, segment, True, answer.granted, answer.expected_loss_fen / 100, None, bound_by)
        elif isinstance(verdict, Offer):
            outcome = Outcome(score.application_id, score.customer_id, segment, False, 0, 0.0, "strategy", answer.refusal or "budget_exhausted")
        else:
            assert isinstance(verdict, Close)
            outcome = Outcome(score.application_id, score.customer_id, segment, False, 0, 0.0, verdict.category, verdict.reason)
        outcomes.append(outcome)
        if on_each is not None:
            on_each()
    return outcomes
