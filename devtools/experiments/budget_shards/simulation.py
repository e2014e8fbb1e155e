"""A segment's budget split into shards that rebalance, against the one counter the fleet has today.

Past one Redis, a segment's budget cannot stay one hash: every reservation of the segment would
still meet on one key, on one core. Split it into K allotments, each on its own Redis instance
(next to the book shard of the customers routed there), and a reservation touches only its own
allotment: atomic and local, as today. An allotment that cannot cover a request asks for headroom
from the richest other allotment: a transfer debits the donor (atomically, recorded under a
transfer id) *before* it credits the receiver (idempotently, by that id), so the allotments never
add up to more than the budget, whatever crashes in between (headroom in flight is underspent until
the transfer log is replayed, never overspent).

This module is pure: a seeded stream of requests (each a customer, hence a shard, and a limit),
the central counter's answers, and the sharded answers with and without rebalancing. What it
counts: money granted against the central counter, requests answered differently, transfers per
thousand requests (each costs two extra script calls on two instances), and headroom stranded in
allotments when requests are refused.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

__all__ = ["Outcome", "Request", "central", "requests", "run", "sharded"]

MIN_LIMIT = 500
ROUND_TO = 100


@dataclass(frozen=True, slots=True)
class Request:
    customer: str
    limit: int


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    shards: int
    granted: int  # CNY
    opened: int  # requests granted something
    differs: int  # requests answered differently from the central counter
    transfers: int
    stranded: int  # CNY of headroom left in allotments while some request was refused for want of room
    budget: int

    def as_dict(self, total_requests: int, central_granted: int) -> dict[str, object]:
        return {
            "name": self.name, "shards": self.shards, "granted": self.granted, "opened": self.opened,
            "granted_vs_central_pct": round(100 * self.granted / central_granted, 2) if central_granted else 0.0,
            "differs": self.differs,
            "transfers_per_1000_requests": round(1000 * self.transfers / total_requests, 1) if total_requests else 0.0,
            "stranded": self.stranded, "within_budget": self.granted <= self.budget,
        }  # fmt: skip


def run(count: int = 3_000, budget: int = 30_000_000, shard_counts: tuple[int, ...] = (4, 16, 64), seed: int = 7) -> list[dict[str, object]]:
    """The central counter, then each shard count static and rebalancing, on one seeded stream."""
    stream = requests(count, seed)
    reference = central(stream, budget)
    rows = [Outcome("one counter (today)", 1, sum(reference), sum(1 for g in reference if g), 0, 0, 0, budget)]
    for shards in shard_counts:
        for rebalance in (False, True):
            rows.append(sharded(stream, budget, shards, rebalance=rebalance, reference=reference))
    return [row.as_dict(count, sum(reference)) for row in rows]


def requests(count: int, seed: int, customers: int = 20_000) -> list[Request]:
    """A seeded stream: customers at random, limits from 5,000 to 50,000 CNY (as the grade grid gives)."""
    rng = random.Random(seed)
    return [Request(f"cus_{rng.randrange(customers):06d}", rng.choice(range(5_000, 50_001, 2_500))) for _ in range(count)]


def _grant(limit: int, room: int) -> int:
    granted = min(limit, room) // ROUND_TO * ROUND_TO
    return granted if granted >= MIN_LIMIT else 0


def central(stream: list[Request], budget: int) -> list[int]:
    """Today's book: one counter per segment. The granted amount of each request."""
    room, out = budget, []
    for request in stream:
        granted = _grant(request.limit, room)
        room -= granted
        out.append(granted)
    return out


def shard_of(customer: str, shards: int) -> int:
    return int.from_bytes(hashlib.blake2b(customer.encode(), digest_size=4).digest(), "big") % shards


def sharded(stream: list[Request], budget: int, shards: int, *, rebalance: bool, reference: list[int]) -> Outcome:
    """K allotments of budget/K; with `rebalance`, a short allotment pulls headroom from the richest others
    (half of the donor's room, at least what it lacks) before it answers."""
    rooms = [budget // shards + (1 if i < budget % shards else 0) for i in range(shards)]
    granted_total = opened = differs = transfers = stranded = 0
    for request, expected in zip(stream, reference, strict=True):
        home = shard_of(request.customer, shards)
        if rebalance:
            while rooms[home] < request.limit:
                donor = max((i for i in range(shards) if i != home), key=lambda i: rooms[i], default=None)
                if donor is None or rooms[donor] <= 0:
                    break
                moved = min(rooms[donor], max(request.limit - rooms[home], rooms[donor] // 2))
                rooms[donor] -= moved  # debit first ...
                rooms[home] += moved  # ... then credit: the sum never exceeds the budget
                transfers += 1
        granted = _grant(request.limit, rooms[home])
        rooms[home] -= granted
        granted_total += granted
        opened += granted > 0
        differs += granted != expected
        if granted < request.limit:
            stranded = max(stranded, sum(rooms) - rooms[home])
        assert sum(rooms) + granted_total == budget  # nothing created, nothing lost
    name = f"{shards} shards, {'rebalancing' if rebalance else 'static'}"
    return Outcome(name, shards, granted_total, opened, differs, transfers, stranded, budget)
