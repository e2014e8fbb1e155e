"""The notification ledger: which decisions were told, so each is told once. Pure.

Every place that keeps the ledger runs these rules: the in-memory ledger of the handler tests
(`memory_ledger.py`) and the rebuild from `credit.notifications` (`installed`). The Redis ledger
(`redis_ledger.py`) runs them atomically as a Lua script, its twin line for line;
`tests/e2e/test_notification_twins.py` drives both through the same random streams and compares every
reply and every value. Times are milliseconds of the ledger's clock (Redis's TIME for the Redis
ledger), passed in.

The state: a notice per decision (claimed, published, the kept event, when it is forgotten) and
each customer's highest decision sequence told.

The rules, in the order a claim of (decision id, customer, sequence) applies them, one after the
other in the batch's order:

- **done**: the decision was claimed and its notice published: nothing to tell.
- **again**: claimed but not published (the batch that claimed it stopped half way): publish the
  kept event again (none kept: tell it afresh).
- **stale**: a decision (sequence above 0) not above the customer's highest sequence told: the
  customer has heard of a newer one, and hears nothing of this one.
- **fresh**: claim it, kept `TTL_S` from now; a decision raises the customer's sequence to its own.
  A notice that is not a decision (a review, a drawdown outcome: sequence 0 or below) is never
  stale and leaves the customer's order alone.

`remember` keeps a notice's event unless one is kept already; `mark_published` marks it published
and drops the event (a redelivery has nothing to publish again). A notice past its time is gone, as
Redis forgets the key: a decision is then stale all the same (the customer's sequence stays), a
notice outside the order would be told afresh (a redelivery that late cannot happen).
`installed` is the state a rebuild installs: the notices told within the last `TTL_S`, published,
kept until `TTL_S` after they were told, and every customer's highest sequence told.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from services.notification.ports import Claim

__all__ = ["TTL_S", "LedgerState", "NoticeEntry", "NoticeLedger", "installed"]

TTL_S = 30 * 24 * 3600


@dataclass(slots=True)
class NoticeEntry:
    """One decision's notice (Redis: the hash `notice:<decision_id>`); absent fields read as the defaults."""

    claimed: bool = False
    published: bool = False
    event: bytes | None = None
    expires_at: int | None = None  # ms; None: kept until deleted


@dataclass
class LedgerState:
    """Every value the ledger holds."""

    notices: dict[str, NoticeEntry] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)  # customer -> highest decision sequence told


class NoticeLedger:
    """The ledger in memory. Methods mirror the Lua entry points one to one."""

    def __init__(self, state: LedgerState | None = None) -> None:
        self.state = state or LedgerState()

    def _forget_expired(self, now_ms: int) -> None:
        expired = [d for d, entry in self.state.notices.items() if entry.expires_at is not None and entry.expires_at <= now_ms]
        for decision_id in expired:
            del self.state.notices[decision_id]

    def claim(self, decisions: Sequence[tuple[str, str, int]], now_ms: int) -> list[Claim]:
        """Claim (decision id, customer, sequence) triples in order."""
        self._forget_expired(now_ms)
        out = []
        for decision_id, customer, seq in decisions:
            entry = self.state.notices.get(decision_id)
            if entry is not None and entry.claimed:
                out.append(Claim("done") if entry.published else Claim("again", entry.event or None))
            elif seq > 0 and seq <= self.state.seqs.get(customer, 0):
                out.append(Claim("stale"))
            else:
                if seq > 0:
                    self.state.seqs[customer] = seq
                entry = self.state.notices.setdefault(decision_id, NoticeEntry())
                entry.claimed = True
                entry.expires_at = now_ms + TTL_S * 1000
                out.append(Claim("fresh"))
        return out

    def remember(self, notices: Sequence[tuple[str, bytes]], now_ms: int) -> None:
        """Keep each notice's event, unless one is kept already."""
        self._forget_expired(now_ms)
        for decision_id, event in notices:
            entry = self.state.notices.setdefault(decision_id, NoticeEntry())
            if entry.event is None:
                entry.event = event

    def mark_published(self, decision_ids: Sequence[str], now_ms: int) -> None:
        self._forget_expired(now_ms)
        for decision_id in decision_ids:
            entry = self.state.notices.setdefault(decision_id, NoticeEntry())
            entry.published = True
            entry.event = None


def installed(told_ago_ms: Mapping[str, int], seqs: Mapping[str, int], now_ms: int) -> LedgerState:
    """The ledger a rebuild installs at `now_ms`: the decisions told (decision id -> how long ago, ms)
    that are not yet forgotten, published, and each customer's highest sequence told.

    Ages, not times: the rebuild reads when a decision was told on the fleet's clock, the ledger
    keeps time on its own (Redis's), and an age is the same on both."""
    state = LedgerState(seqs=dict(seqs))
    for decision_id, ago_ms in told_ago_ms.items():
        expires_at = now_ms - ago_ms + TTL_S * 1000
        if expires_at > now_ms:
            state.notices[decision_id] = NoticeEntry(claimed=True, published=True, expires_at=expires_at)
    return state
