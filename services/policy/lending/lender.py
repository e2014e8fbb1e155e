"""The policy service's lending layer: drawdowns and repayments decided in real time (在用户申请时实时放款).

For a batch from `credit.drawdowns`: each request is put to the book in order (one atomic script
call per run of drawdowns or of repayments, so a customer's drawdown, repayment and drawdown keep
their order), then the outcomes are published to the same topic. The book answers each id once and
keeps its answer, so a redelivered request republishes the same outcome (same event id, same
balance), and nothing is lent twice. A drawdown or repayment id already used by another customer is
refused as a conflict (dead-lettered by the handler).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

import structlog

from services.policy.control.state import PolicyState
from services.policy.lending.drawdowns import applied, draw_request, outcome, repay_request
from services.policy.lending.ports import LendingBook
from services.policy.windows.model import Movement
from shared.clock import Clock
from shared.contracts import DrawdownApproved, DrawdownRefused, DrawdownRequested, LendingOutcome, Repaid
from shared.ports import EventPublisher

__all__ = ["Lender", "Lent"]

log = structlog.get_logger("creditwindow.policy")

@dataclass(frozen=True, slots=True)
class Lent:
    """A batch's outcome: the events published, and the requests refused as conflicts."""

    outcomes: list[LendingOutcome]
    conflicts: list[DrawdownRequested | Repaid]


@dataclass(slots=True, kw_only=True)
class Lender:
    """Decides drawdowns and applies repayments against the book, and publishes what it decided."""

    store: LendingBook
    publisher: EventPublisher
    out_topic: str
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
        conflicts: list[DrawdownRequested | Repaid] = []
        for is_draw, run in groupby(unique.values(), key=lambda r: isinstance(r, DrawdownRequested)):
            batch = list(run)
            movements: list[Movement]
            if is_draw:
                movements = await self.store.draw([draw_request(r, policy, now) for r in batch])  # type: ignore[arg-type]
            else:
                movements = await self.store.repay([repay_request(r, now) for r in batch])  # type: ignore[arg-type]
            for request, movement in zip(batch, movements, strict=True):
                if movement.conflict:
                    conflicts.append(request)
                elif isinstance(request, DrawdownRequested):
                    outcomes.append(outcome(request, movement))
                else:
                    outcomes.append(applied(request, movement))
        await self.publisher.publish((self.out_topic, o) for o in outcomes)
        # One line per batch at INFO, as for decisions: every outcome is on `credit.drawdowns` (the
        # balances' log, kept forever); the per-outcome lines are at DEBUG.
        if outcomes or conflicts:
            kinds: dict[str, int] = {}
            for o in outcomes:
                kind = o.reason if isinstance(o, DrawdownRefused) else o.EVENT_TYPE
                kinds[kind] = kinds.get(kind, 0) + 1
            log.info("batch_lent", size=len(requests), outcomes=kinds, conflicts=len(conflicts), policy_version=policy.label)
        if log.is_enabled_for(logging.DEBUG):
            for o in outcomes:
                _log(o)
        return Lent(outcomes, conflicts)


def _log(event: LendingOutcome) -> None:
    if isinstance(event, DrawdownApproved):
        log.debug("drawdown_approved", drawdown_id=event.drawdown_id, customer_id=event.customer_id, amount=event.amount, balance=event.balance, available=event.available)
    elif isinstance(event, DrawdownRefused):
        log.debug(
            "drawdown_refused", drawdown_id=event.drawdown_id, customer_id=event.customer_id, amount=event.amount,
            category=event.category, reason=event.reason, window_reason=event.window_reason,
        )  # fmt: skip
    else:
        log.debug("repayment_applied", repayment_id=event.repayment_id, customer_id=event.customer_id, applied=event.applied, balance=event.balance)
