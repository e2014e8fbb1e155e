"""Shadow mode's adapters: a limit store that decides in memory and never writes Redis, and an outbox
that publishes decisions but no dead letters (the live replicas dead-letter what they refuse).

A shadow replica runs a candidate policy on the live scores (its own consumer group, decisions to
`credit.windows.shadow`). To grant limits under the same budget pressure as the live fleet it
starts from the live reservations (read once per segment and programme), and when a customer the
shadow has not decided yet applies again it releases that customer's live window in its own book,
as the live store would. Everything it decides stays in this process.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog
from redis.asyncio import Redis

from services.policy.budget import BudgetState, grant
from services.policy.decisions import Allocation, Proposal
from services.policy.document import PolicyDocument
from services.policy.redis_limits import CurrentWindow, LifecycleClosure, RedisLimits
from services.policy.rules import Close, Offer
from shared.messaging import Outbox
from shared.wire import RefusedRecord

__all__ = ["LiveBook", "ShadowLimits", "ShadowOutbox"]

log = structlog.get_logger("creditwindow.policy")


class ShadowOutbox(Outbox):
    """Publishes the shadow's decisions; a record it refuses is logged, not dead-lettered a second time."""

    async def dead_letter(self, topic: str, refused: Iterable[RefusedRecord]) -> int:
        count = 0
        for item in refused:
            count += 1
            log.info("shadow_refused", topic=item.record.topic, partition=item.record.partition, offset=item.record.offset, error_type=item.error_type)
        return count


@dataclass(frozen=True, slots=True)
class LiveReservation:
    """A live open window's reservation, as the live store holds it."""

    segment: str
    granted: int
    expected_loss: float
    programme: str
    part: int


class LiveBook:
    """Read-only view of the live limit store: reservations per segment and programme, open windows."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._limits = RedisLimits(redis, prefix)

    async def budgets(self) -> dict[str, dict[str, float]]:
        return await self._limits.budgets()

    async def programmes(self, names: Sequence[str]) -> dict[str, int]:
        return await self._limits.programmes(names)

    async def open_window(self, customer_id: str) -> LiveReservation | None:
        """The customer's current live window if it is open, with what it reserved."""
        record = await self._redis.hget(f"{self._prefix}window:{customer_id}", "record")
        if not record:
            return None
        name = record.decode() if isinstance(record, bytes) else str(record)
        values = await self._redis.hmget(f"{self._prefix}app:{name}", ["status", "granted", "el_fen", "segment", "programme", "part"])
        status, granted, el_fen, segment, programme, part = (v.decode() if isinstance(v, bytes) else (v or "") for v in values)
        if status != "open":
            return None
        return LiveReservation(segment, int(float(granted or 0)), int(el_fen or 0) / 100, programme, int(float(part or 0)))


@dataclass(slots=True)
class _Decided:
    seq: int
    granted: int
    refusal: str | None
    part: int
    available: int
    budget_bound: bool
    el_fen: int
    customer: str
    segment: str
    programme: str
    status: str  # open | closed | released
    fields: dict[str, str]
    valid_until_ms: int = 0
    event: bytes | None = None
    published: bool = False


@dataclass(slots=True)
class ShadowLimits:
    """A `LimitStore` in memory, seeded read-only from the live store (see the module docstring)."""

    live: LiveBook
    budgets: dict[str, BudgetState] = field(default_factory=dict)
    programmes: dict[str, int] = field(default_factory=dict)
    decided: dict[str, _Decided] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)
    windows: dict[str, CurrentWindow] = field(default_factory=dict)
    current_record: dict[str, str] = field(default_factory=dict)
    live_released: set[str] = field(default_factory=set)
    closing: dict[str, int] = field(default_factory=dict)
    deferred: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    seeded: bool = False

    async def _seed(self, policy: PolicyDocument) -> None:
        if self.seeded:
            return
        for segment, reserved in (await self.live.budgets()).items():
            self.budgets[segment] = BudgetState(int(reserved["exposure"]), reserved["expected_loss"])
        self.programmes.update(await self.live.programmes([p.name for p in policy.programmes]))
        self.seeded = True

    def _state(self, segment: str, programme: str) -> BudgetState:
        reserved = self.budgets.get(segment, BudgetState())
        return BudgetState(reserved.reserved_exposure, reserved.reserved_el, self.programmes.get(programme, 0))

    def _add(self, segment: str, granted: int, el_fen: int, programme: str, part: int, sign: int) -> None:
        reserved = self.budgets.get(segment, BudgetState())
        self.budgets[segment] = BudgetState(reserved.reserved_exposure + sign * granted, reserved.reserved_el + sign * el_fen / 100)
        if programme and part:
            self.programmes[programme] = self.programmes.get(programme, 0) + sign * part

    def _release(self, record: str) -> None:
        entry = self.decided.get(record)
        if entry is None or entry.status != "open":
            return
        self._add(entry.segment, entry.granted, entry.el_fen, entry.programme, entry.part, -1)
        entry.status = "released"

    async def _release_previous(self, customer: str, record: str) -> None:
        previous = self.current_record.get(customer)
        if previous is not None and previous != record:
            self._release(previous)
        elif previous is None and customer not in self.live_released:
            self.live_released.add(customer)
            live = await self.live.open_window(customer)
            if live is not None:
                self._add(live.segment, live.granted, round(live.expected_loss * 100), live.programme, live.part, -1)

    async def allocate(self, proposals: Sequence[Proposal], policy: PolicyDocument) -> list[Allocation]:
        """Decide each proposal once, under the shadow's budget book (the live store's rule, in memory)."""
        await self._seed(policy)
        out = []
        for proposal in proposals:
            record = proposal.record_key
            seen = self.decided.get(record)
            if seen is not None:
                out.append(
                    Allocation(
                        fresh=False,
                        seq=seen.seq,
                        granted=seen.granted,
                        refusal=seen.refusal,
                        programme_part=seen.part,
                        available=seen.available,
                        budget_bound=seen.budget_bound,
                        expected_loss_fen=seen.el_fen,
                        stored_event=seen.event,
                        published=seen.published,
                    )
                )
                continue
            out.append(await self._allocate_new(proposal, policy))
        return out

    async def _allocate_new(self, proposal: Proposal, policy: PolicyDocument) -> Allocation:
        score, verdict = proposal.score, proposal.verdict
        facts = score.facts
        segment = facts.segment if facts else "unknown"
        programme = policy.programme_for(segment) if facts else None
        programme_name = programme.name if (programme and isinstance(verdict, Offer)) else ""
        granted, refusal, part, available, bound, el_fen = 0, None, 0, 0, False, 0
        if isinstance(verdict, Offer):
            result = grant(verdict, self._state(segment, programme_name), policy, segment)
            available, refusal = result.budget_available, result.refusal
            if result.limit > 0:
                granted, part = result.limit, result.programme_part
                bound = result.bound_by == "segment_budget"
                el_fen = math.floor(granted * verdict.el_rate * 100 + 0.5)
                self._add(segment, granted, el_fen, programme_name, part, +1)
        customer = score.customer_id
        seq = self.seqs.get(customer, 0) + 1
        self.seqs[customer] = seq
        status = "open" if granted > 0 else "closed"
        fields = {
            "application_id": score.application_id, "customer": customer, "segment": segment, "decision_id": str(proposal.decision_id),
            "policy_version": proposal.policy_label, "model_id": score.model_id or "", "locale": facts.locale if facts else "zh-CN",
            "partner": (facts.partner_id or "") if facts else "", "region": facts.region if facts else "",
            "channel": facts.channel if facts else "", "status": status, "granted": str(granted),
        }  # fmt: skip
        valid_until_ms = int(verdict.valid_until.timestamp() * 1000) if isinstance(verdict, Offer) and granted else 0
        self.decided[proposal.record_key] = _Decided(seq, granted, refusal, part, available, bound, el_fen, customer, segment, programme_name, status, fields, valid_until_ms)
        if proposal.supersedes:
            await self._release_previous(customer, proposal.record_key)
            self.current_record[customer] = proposal.record_key
            closed = None if granted else (("strategy", refusal or "budget_exhausted") if isinstance(verdict, Offer) else (verdict.category, verdict.reason))
            self.windows[customer] = CurrentWindow(
                customer_id=customer, status=status, limit=granted, apr=verdict.apr if granted and isinstance(verdict, Offer) else None,
                valid_until=datetime.fromtimestamp(valid_until_ms / 1000, UTC) if valid_until_ms else None,
                decision_id=str(proposal.decision_id), decision_seq=seq, policy_version=proposal.policy_label,
                application_id=score.application_id, segment=segment,
                category=closed[0] if closed else None, reason=closed[1] if closed else None,
            )  # fmt: skip
        if isinstance(verdict, Close) and verdict.reason == "maintenance" and verdict.retry_after is not None:
            self.deferred[proposal.record_key] = (int(verdict.retry_after.timestamp() * 1000), score.model_dump_json().encode())
        return Allocation(
            fresh=True,
            seq=seq,
            granted=granted,
            refusal=refusal,
            programme_part=part,
            available=available,
            budget_bound=bound,
            expected_loss_fen=el_fen,
        )

    async def remember(self, decisions: Sequence[tuple[str, bytes]]) -> None:
        for record, payload in decisions:
            entry = self.decided[record]
            if entry.event is None:
                entry.event = payload

    async def mark_published(self, application_ids: Sequence[str]) -> None:
        for record in application_ids:
            self.decided[record].published = True

    async def due_expiries(self, now: datetime, limit: int = 200) -> list[str]:
        at = int(now.timestamp() * 1000)
        due = sorted((e.valid_until_ms, r) for r, e in self.decided.items() if e.status == "open" and e.valid_until_ms <= at)
        return [r for _, r in due[:limit]]

    async def open_applications(self) -> list[str]:
        return sorted(r for r, e in self.decided.items() if e.status == "open")

    async def application(self, application_id: str) -> dict[str, str]:
        entry = self.decided.get(application_id)
        return dict(entry.fields) if entry else {}

    async def close(self, application_id: str, *, closure_id: str, category: str, reason: str, trigger: str, now: datetime) -> LifecycleClosure | None:
        entry = self.decided.get(application_id)
        if entry is None or entry.status != "open":
            return None
        self._release(application_id)
        seq = self.seqs[entry.customer] + 1
        self.seqs[entry.customer] = seq
        entry.status = "closed"
        entry.fields.update(
            status="closed", closure_id=closure_id, closure_seq=str(seq), closure_category=category, closure_reason=reason,
            closure_trigger=trigger, closure_at=str(int(now.timestamp() * 1000)),
        )  # fmt: skip
        window = self.windows.get(entry.customer)
        if window is not None and self.current_record.get(entry.customer) == application_id:
            self.windows[entry.customer] = CurrentWindow(
                entry.customer, "closed", 0, None, None, closure_id, seq, window.policy_version, window.application_id, window.segment, category, reason
            )
        self.closing[application_id] = seq
        return LifecycleClosure(application_id, dict(entry.fields))

    async def pending_closures(self, limit: int = 200) -> list[LifecycleClosure]:
        ordered = sorted(self.closing, key=self.closing.__getitem__)[:limit]
        return [LifecycleClosure(r, dict(self.decided[r].fields)) for r in ordered]

    async def due_deferred(self, now: datetime, limit: int = 200) -> list[tuple[str, bytes]]:
        at = int(now.timestamp() * 1000)
        return [(r, score) for r, (when, score) in sorted(self.deferred.items(), key=lambda kv: kv[1][0]) if when <= at][:limit]

    async def redecided(self, record_keys: Sequence[str]) -> None:
        for record in record_keys:
            self.deferred.pop(record, None)

    async def closure_published(self, application_ids: Sequence[str]) -> None:
        for record in application_ids:
            self.closing.pop(record, None)

    async def current(self, customer_id: str) -> CurrentWindow | None:
        return self.windows.get(customer_id)
