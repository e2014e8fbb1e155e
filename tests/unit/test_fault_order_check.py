"""The fault suite's order check: the first copy of each decision rises in sequence by offset."""

from __future__ import annotations

from types import SimpleNamespace

from devtools.faults import out_of_order


def _event(customer: str, decision: str, seq: int) -> SimpleNamespace:
    return SimpleNamespace(customer_id=customer, decision_id=decision, decision_seq=seq)


def test_a_redelivered_copy_is_not_a_reordering_but_a_lower_sequence_after_a_higher_one_is() -> None:
    kept = [(0, 0, _event("a", "d1", 1)), (0, 1, _event("a", "d2", 2)), (0, 2, _event("a", "d1", 1)), (0, 3, _event("a", "d3", 3))]
    assert out_of_order(kept) == []
    swapped = [(1, 0, _event("b", "d2", 2)), (1, 1, _event("b", "d1", 1))]
    assert out_of_order(swapped) == ["b: seq 1 at 1/1 after seq 2 at 1/0"]


def test_one_customer_on_two_partitions_is_reported() -> None:
    assert out_of_order([(0, 5, _event("c", "d1", 1)), (3, 0, _event("c", "d2", 2))])
