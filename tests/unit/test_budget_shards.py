"""Budget shards that rebalance by debit-then-credit transfers: never over budget, and as the one counter."""

from __future__ import annotations

from devtools.experiments.budget_shards.simulation import central, requests, sharded


def test_rebalancing_shards_answer_as_the_one_counter_and_never_exceed_the_budget() -> None:
    stream = requests(2_000, seed=3)
    reference = central(stream, 20_000_000)
    assert sum(reference) <= 20_000_000
    for shards in (4, 16):
        outcome = sharded(stream, 20_000_000, shards, rebalance=True, reference=reference)
        assert outcome.granted <= 20_000_000 and outcome.differs == 0 and outcome.stranded == 0
        assert outcome.transfers > 0


def test_static_shards_refuse_while_other_shards_still_have_room() -> None:
    stream = requests(2_000, seed=3)
    reference = central(stream, 20_000_000)
    outcome = sharded(stream, 20_000_000, 16, rebalance=False, reference=reference)
    assert outcome.granted <= 20_000_000
    assert outcome.differs > 0 and outcome.stranded > 0 and outcome.transfers == 0
