"""The policy service's lending layer: drawdowns and repayments decided in real time (在用户申请时实时放款).

For a batch of requests (`credit.lending-requests`): each is put to the book in order (one atomic
script call per run of drawdowns or of repayments, so a customer's drawdown, repayment and drawdown
keep their order), then the outcomes are published to `out_topic` (`credit.lending-results`), and
the loans booked (and the overdues a repayment cured) to `loans_topic` (`credit.loans`): both result
topics only this service writes. The book answers each id once and keeps its answer, so a
redelivered request republishes the same outcome and the same loan (same event ids, same balance),
and nothing is lent twice. A drawdown or repayment id already used by another customer is refused
as a conflict (dead-lettered by the handler).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

import structlog

from services.policy.control.state import PolicyState
from services.policy.lending.drawdowns import applied, draw_request, outcome, repay_request
from services.policy.lending.loan_events import cured, loan_booked
from services.policy.lending.ports import LendingBook
from services.policy.windows.model import Loan, Movement
from shared.clock import Clock
from shared.contracts import DrawdownApproved, DrawdownRefused, DrawdownRequested, LendingOutcome, LoanEvent, Repaid
from shared.contracts.envelope import Event
from shared.ports import EventPublisher

__all__ = ["Lender", "Lent"]

log = structlog.get_logger("creditwindow.policy")


@dataclass(frozen=True, slots=True)
class Lent:
    """A batch's outcome: the events published (outcomes, and loan events), and the requests refused as conflicts."""

    outcomes: list[LendingOutcome]
    conflicts: list[DrawdownRequested | Repaid]
    loan_events: list[LoanEvent]


@dataclass(slots=True, kw_only=True)
class Lender:
    """Decides drawdowns and applies repayments against the book, and publishes what it decided."""

    store: LendingBook
    publisher: EventPublisher
    out_topic: str
    loans_topic: str
    state: PolicyState
    clock: Clock

    async def lend(self, requests: Sequence[DrawdownRequested | Repaid]) -> Lent:
        policy = self.state.active
        now = self.clock.now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the store keeps milliseconds
        unique: dict[tuple[str, str], DrawdownRequested | Repaid] = {}
        for request in requests:
            ident = request.drawdown_id if isinstance(request, DrawdownRequested) else request.repayment_id
            unique.setdefault((request.EVENT_TYPE, ident), request)  # the same request twice in a batch is one
        outcomes: list[LendingOutcome] = []
        loan_events: list[LoanEvent] = []
        conflicts: list[DrawdownRequested | Repaid] = []
        for is_draw, run in groupby(unique.values(), key=lambda r: isinstance(r, DrawdownRequested)):
            batch = list(run)
            movements: list[Movement]
            booked: dict[str, Loan] = {}
            if is_draw:
                movements = await self.store.draw([draw_request(r, policy, now) for r in batch])  # type: ignore[arg-type]
                booked = await self.store.loans({m.loan_id for m in movements if m.loan_id and not m.conflict})
            else:
                movements = await self.store.repay([repay_request(r, now) for r in batch])  # type: ignore[arg-type]
            for request, movement in zip(batch, movements, strict=True):
                if movement.conflict:
                    conflicts.append(request)
                elif isinstance(request, DrawdownRequested):
                    outcomes.append(outcome(request, movement))
                    if movement.loan_id in booked:
                        loan_events.append(loan_booked(request, booked[movement.loan_id]))
                else:
                    outcomes.append(applied(request, movement))
                    if (cure := cured(request, movement, policy)) is not None:
                        loan_events.append(cure)
        published: list[tuple[str, Event]] = [(self.out_topic, o) for o in outcomes]
        await self.publisher.publish([*published, *((self.loans_topic, e) for e in loan_events)])
        # One line per batch at INFO, as for decisions: every outcome is on `credit.lending-results` (the
        # balances' log, kept forever); the per-outcome lines are at DEBUG.
        if outcomes or conflicts:
            kinds: dict[str, int] = {}
            for o in outcomes:
                kind = o.reason if isinstance(o, DrawdownRefused) else o.EVENT_TYPE
                kinds[kind] = kinds.get(kind, 0) + 1
            log.info(
                "batch_lent", size=len(requests), outcomes=kinds, loan_events=len(loan_events), conflicts=len(conflicts),
                policy_version=policy.label,
            )  # fmt: skip
        if log.is_enabled_for(logging.DEBUG):
            for o in outcomes:
                _log(o)
        return Lent(outcomes, conflicts, loan_events)


def _log(event: LendingOutcome) -> None:
    if isinstance(event, DrawdownApproved):
        log.debug(
            "drawdown_approved", drawdown_id=event.drawdown_id, customer_id=event.customer_id, amount=event.amount,
            balance=event.balance, available=event.available, loan_id=event.loan_id,
        )  # fmt: skip
    elif isinstance(event, DrawdownRefused):
        log.debug(
            "drawdown_refused", drawdown_id=event.drawdown_id, customer_id=event.customer_id, amount=event.amount,
            category=event.category, reason=event.reason, window_reason=event.window_reason,
        )  # fmt: skip
    else:
        log.debug("repayment_applied", repayment_id=event.repayment_id, customer_id=event.customer_id, applied=event.applied, balance=event.balance)
