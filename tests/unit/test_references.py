"""Decision references: what customers quote, in whatever form they type it."""

from __future__ import annotations

import re
import uuid

from hypothesis import given
from hypothesis import strategies as st

from shared.references import REFERENCE_PATTERN, normalise_reference, reference_of

DECISION = uuid.UUID("3f2a9c1b-77d0-4e5a-9b61-0c2d4e6f8a10")


def test_a_reference_is_the_one_customers_have_been_told() -> None:
    assert reference_of(DECISION) == "CW-7WN9-R6VQ-T175"  # as in the golden messages


@given(st.uuids())
def test_every_decision_id_gives_a_reference_that_reads_back_to_itself(decision_id: uuid.UUID) -> None:
    reference = reference_of(decision_id)
    assert re.fullmatch(REFERENCE_PATTERN, reference)
    for typed in (reference, reference.lower(), reference.replace("-", ""), f" {reference} ", str(decision_id)):
        assert normalise_reference(typed) == reference


def test_look_alikes_typed_by_a_customer_are_forgiven() -> None:
    assert normalise_reference("cw-7wn9-r6vq-tl75") == "CW-7WN9-R6VQ-T175"  # l for 1
    assert normalise_reference("CW-7WN9-R6VQ-T17S") == "CW-7WN9-R6VQ-T17S"


def test_anything_else_is_not_a_reference() -> None:
    for text in ("", "CW-", "CW-7WN9-R6VQ", "hello", "CW-7WN9-R6VQ-T175-XXXX", "../../etc/passwd"):
        assert normalise_reference(text) is None
