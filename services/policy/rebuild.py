"""Rebuilding the limit store from `credit.windows`: Redis is derived state, the topic is the truth.

`derive` is pure: decision events in, the keys the limit store would hold out (current windows,
budgets, programme reservations, decision sequences, open and expiring windows, and the decision
records that keep a redelivered score from being decided twice). `snapshot` reads the same keys
from Redis, so a rebuild can be checked against the live cache key by key.

Not rebuilt: maintenance deferrals still waiting (their score is not on the topic) and the
notification ledger (it belongs to the notification service).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from shared.contracts import Decision, WindowClosed, WindowOpened
from shared.redis_connection import text

__all__ = ["DERIVED", "Derived", "derive", "snapshot", "write"]

# Key families a rebuild owns (relative to the prefix).
DERIVED = ("window:", "budget:", "programme:", "seq:", "app:", "expiry", "open", "closing", "deferred")


@dataclass(slots=True)
class Derived:
    windows: dict[str, dict[str, str]] = field(default_factory=dict)
    budgets: dict[str, dict[str, int]] = field(default_factory=dict)
    programmes: dict[str, int] = field(default_factory=dict)
    seqs: dict[str, int] = field(default_factory=dict)
    expiry: dict[str, int] = field(default_factory=dict)
    open: set[str] = field(default_factory=set)
    records: dict[str, dict[str, str]] = field(default_factory=dict)

    def comparable(self) -> dict[str, object]:
        """What `creditwindow cache rebuild --check` compares with the live cache."""
        return {
            "windows": self.windows,
            "budgets": {k: v for k, v in self.budgets.items() if any(v.values())},
            "programmes": {k: v for k, v in self.programmes.items() if v},
            "seqs": self.seqs,
            "expiry": self.expiry,
            "open": sorted(self.open),
        }


def _ms(value: object) -> str:
    return str(int(value.timestamp() * 1000)) if value is not None else ""  # type: ignore[attr-defined]


def _record_key(decision: Decision, by_decision: dict[str, str]) -> str | None:
    if decision.trigger == "application":
        return decision.application_id
    if decision.trigger == "redecision":
        return f"{decision.application_id}~r"
    closes = getattr(decision, "closes_decision_id", None)
    return by_decision.get(str(closes)) if closes else None


def derive(decisions: Iterable[Decision]) -> Derived:
    """Replay decisions in sequence order per customer; first copy of a decision wins."""
    state = Derived()
    by_decision: dict[str, str] = {}
    seen: set[str] = set()
    ordered = sorted(decisions, key=lambda d: (d.customer_id, d.decision_seq))
    for decision in ordered:
        if str(decision.decision_id) in seen:
            continue  # a redelivered copy
        seen.add(str(decision.decision_id))
        customer = decision.customer_id
        state.seqs[customer] = max(state.seqs.get(customer, 0), decision.decision_seq)
        record = _record_key(decision, by_decision)
        if record is None:
            continue
        if decision.trigger in ("application", "redecision"):
            by_decision[str(decision.decision_id)] = record
            _decide(state, decision, record)
        else:
            _close(state, decision, record)
    return state


def _release(state: Derived, record: str) -> None:
    entry = state.records.get(record)
    if not entry or entry.get("status") != "open":
        return
    budget = state.budgets.setdefault(entry["segment"], {"exposure": 0, "el_fen": 0})
    budget["exposure"] -= int(entry["granted"])
    budget["el_fen"] -= int(entry["el_fen"])
    if entry.get("programme") and int(entry.get("part", "0")):
        state.programmes[entry["programme"]] = state.programmes.get(entry["programme"], 0) - int(entry["part"])
    entry["status"] = "released"
    state.open.discard(record)
    state.expiry.pop(record, None)


def _decide(state: Derived, decision: Decision, record: str) -> None:
    opened = isinstance(decision, WindowOpened)
    segment = decision.segment or "unknown"
    entry = {
        "seq": str(decision.decision_seq),
        "granted": str(decision.limit if opened else 0),  # type: ignore[union-attr]
        "status": "open" if opened else "closed",
        "el_fen": str(round(decision.expected_loss * 100) if opened else 0),  # type: ignore[union-attr]
        "customer": decision.customer_id,
        "segment": segment,
        "programme": (decision.basis.programme or "") if opened else "",  # type: ignore[union-attr]
        "part": str(decision.basis.programme_part if opened else 0),  # type: ignore[union-attr]
        "decision_id": str(decision.decision_id),
        "application_id": decision.application_id,
        "region": decision.region or "",
        "channel": decision.channel or "",
        "locale": decision.locale,
        "partner": decision.partner_id or "",
        "model_id": decision.model_id or "",
        "policy_version": decision.policy_version,
        "event": decision.model_dump_json(),
        "published": "1",
    }
    state.records[record] = entry
    if opened:
        budget = state.budgets.setdefault(segment, {"exposure": 0, "el_fen": 0})
        budget["exposure"] += int(entry["granted"])
        budget["el_fen"] += int(entry["el_fen"])
        if entry["programme"] and int(entry["part"]):
            state.programmes[entry["programme"]] = state.programmes.get(entry["programme"], 0) + int(entry["part"])
    system_closure = isinstance(decision, WindowClosed) and decision.category == "system"
    if system_closure:
        return  # a system closure leaves the customer's current window as it was
    previous = state.windows.get(decision.customer_id, {}).get("record")
    if previous and previous != record:
        _release(state, previous)
    state.windows[decision.customer_id] = {
        "status": "open" if opened else "closed",
        "limit": str(decision.limit if opened else 0),  # type: ignore[union-attr]
        "apr": repr(decision.apr) if opened else "",  # type: ignore[union-attr]
        "valid_until": _ms(decision.valid_until) if opened else "",  # type: ignore[union-attr]
        "decision_id": str(decision.decision_id),
        "decision_seq": str(decision.decision_seq),
        "policy_version": decision.policy_version,
        "record": record,
        "application_id": decision.application_id,
        "segment": segment,
        "category": "" if opened else decision.category,  # type: ignore[union-attr]
        "reason": "" if opened else decision.reason,  # type: ignore[union-attr]
    }
    if opened:
        state.open.add(record)
        state.expiry[record] = int(_ms(decision.valid_until))  # type: ignore[union-attr]


def _close(state: Derived, closure: Decision, record: str) -> None:
    assert isinstance(closure, WindowClosed)
    _release(state, record)
    entry = state.records.get(record)
    if entry is not None:
        entry["status"] = "closed"
    window = state.windows.get(closure.customer_id)
    if window is not None and window.get("record") == record:
        window.update(
            {
                "status": "closed",
                "limit": "0",
                "apr": "",
                "valid_until": "",
                "decision_id": str(closure.decision_id),
                "decision_seq": str(closure.decision_seq),
                "category": closure.category,
                "reason": closure.reason,
            }
        )


async def snapshot(redis: Redis, prefix: str) -> Derived:
    """The live cache's comparable keys."""
    state = Derived()
    async for key in redis.scan_iter(match=f"{prefix}window:*", count=500):
        state.windows[text(key)[len(prefix) + 7 :]] = {text(k): text(v) for k, v in (await redis.hgetall(key)).items()}
    async for key in redis.scan_iter(match=f"{prefix}budget:*", count=100):
        raw = {text(k): text(v) for k, v in (await redis.hgetall(key)).items()}
        state.budgets[text(key)[len(prefix) + 7 :]] = {"exposure": int(raw.get("exposure", 0)), "el_fen": int(raw.get("el_fen", 0))}
    async for key in redis.scan_iter(match=f"{prefix}programme:*", count=100):
        state.programmes[text(key)[len(prefix) + 10 :]] = int(text(await redis.hget(key, "reserved") or b"0"))
    async for key in redis.scan_iter(match=f"{prefix}seq:*", count=500):
        state.seqs[text(key)[len(prefix) + 4 :]] = int(text(await redis.get(key) or b"0"))
    for member, score in await redis.zrange(f"{prefix}expiry", 0, -1, withscores=True):
        state.expiry[text(member)] = int(score)
    state.open = {text(m) for m in await redis.smembers(f"{prefix}open")}
    return state


async def write(redis: Redis, prefix: str, state: Derived) -> None:
    """Replace the derived keys under `prefix` with `state` (stop the policy service first)."""
    for family in DERIVED:
        pattern = f"{prefix}{family}*" if family.endswith(":") else f"{prefix}{family}"
        batch = [key async for key in redis.scan_iter(match=pattern, count=1000)]
        for i in range(0, len(batch), 500):
            await redis.delete(*batch[i : i + 500])
    pipe = redis.pipeline(transaction=False)
    for customer, window in state.windows.items():
        pipe.hset(f"{prefix}window:{customer}", mapping=window)
    for segment, budget in state.budgets.items():
        pipe.hset(f"{prefix}budget:{segment}", mapping=budget)
    for name, reserved in state.programmes.items():
        pipe.hset(f"{prefix}programme:{name}", "reserved", reserved)
    for customer, seq in state.seqs.items():
        pipe.set(f"{prefix}seq:{customer}", seq)
    for record, entry in state.records.items():
        pipe.hset(f"{prefix}app:{record}", mapping=entry)
    if state.expiry:
        pipe.zadd(f"{prefix}expiry", state.expiry)
    if state.open:
        pipe.sadd(f"{prefix}open", *state.open)
    await pipe.execute()
