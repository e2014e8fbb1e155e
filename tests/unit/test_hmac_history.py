"""Carrying the history signed with the fleet's old shared HMAC ring over to operators' keys: what
the old fleet adopted is verified with the old ring, exactly as the old CLI signed it, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from creditwindow.hmac_history import carried_over, old_action_signature, old_policy_signature, read_old_ring
from shared.contracts import CustomerSuspended, Event, PolicyUpdated, SuspensionLifted
from tests.clocks import NOW
from tests.unit.policy.factories import default_policy

OLD_KEY = b"the-old-shared-ring-key-0123456789ab"
RING = {"k1": OLD_KEY}
THEN = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def test_the_signatures_are_those_the_old_cli_made() -> None:
    # Made by the HMAC signing of before operators' keys (shared/signing.py at f87fdb0), for these fields.
    update = PolicyUpdated(
        correlation_id="c", producer="p", policy_name="default", version=2, document="name: default\nversion: 2\n", issued_by="op_7",
        issued_at=THEN, key_id="k1", namespace="", signature="0" * 64,
    )  # fmt: skip
    assert old_policy_signature(OLD_KEY, update) == "b3a7927c997ea20f047b5ea9e65f94d1970985599a3193ad44075fa91898a21e"
    action = CustomerSuspended(
        correlation_id="c", producer="p", issued_by="ops1", issued_at=THEN, key_id="k1", namespace="", signature="0" * 64,
        customer_id="cus_hist00000001", reason="collections",
    )  # fmt: skip
    assert old_action_signature(OLD_KEY, action) == "c1223b2cd9e772ef2afa1b45dc80a9c79802e3aec70cffe61d984152b29f55ec"


def _update(version: int, *, key: bytes = OLD_KEY, namespace: str = "", **changes: object) -> PolicyUpdated:
    data = default_policy(**changes).model_dump(mode="json")
    data["version"] = version
    unsigned = PolicyUpdated(
        correlation_id="c", producer="cli", policy_name="default", version=version, document=yaml.safe_dump(data), issued_by="op_7",
        issued_at=THEN + timedelta(hours=version), key_id="k1", namespace=namespace, signature="0" * 64,
    )  # fmt: skip
    return unsigned.model_copy(update={"signature": old_policy_signature(key, unsigned)})


def _action(model: type[CustomerSuspended] | type[SuspensionLifted], customer: str, at: datetime, *, key: bytes = OLD_KEY, **fields: object) -> Event:
    unsigned = model(correlation_id="c", producer="cli", issued_by="ops1", issued_at=at, key_id="k1", namespace="", signature="0" * 64, customer_id=customer, **fields)  # type: ignore[arg-type]
    return unsigned.model_copy(update={"signature": old_action_signature(key, unsigned)})


def test_every_version_the_old_fleet_adopted_is_carried_in_order_and_nothing_it_refused() -> None:
    log = [
        _update(2),
        _update(3, cycle_factor=0.9),
        _update(9, key=b"someone-else-entirely"),  # forged under the old ring: the old fleet refused it
        _update(3, cycle_factor=0.5),  # an old version replayed
        _update(4, namespace="staging"),  # signed for another namespace
        _update(4, cycle_factor=0.8),
    ]
    carried = carried_over(log, [], RING, namespace="", policy=default_policy(), now=NOW)
    assert [(document.version, document.cycle_factor) for _, document in carried.versions] == [(2, 1.0), (3, 0.9), (4, 0.8)]


def test_the_suspensions_in_force_now_are_carried_and_lifted_ended_or_forged_ones_are_not() -> None:
    reviews = [
        _action(CustomerSuspended, "cus_kept00000001", THEN, reason="collections", note="kept"),
        _action(CustomerSuspended, "cus_lift00000001", THEN, reason="collections"),
        _action(SuspensionLifted, "cus_lift00000001", THEN + timedelta(hours=1)),
        _action(CustomerSuspended, "cus_ended0000001", THEN, reason="identity_check", until=NOW - timedelta(days=1)),
        _action(CustomerSuspended, "cus_forge0000001", THEN, reason="legal_order", key=b"someone-else-entirely"),
    ]
    carried = carried_over([], reviews, RING, namespace="", policy=default_policy(), now=NOW)
    assert [(s.customer_id, s.reason, s.note) for s in carried.suspensions] == [("cus_kept00000001", "collections", "kept")]


def test_the_old_ring_is_read_as_its_variable_held_it(tmp_path: Path) -> None:
    path = tmp_path / "old-ring.json"
    path.write_text('{"k1": "the-old-shared-ring-key-0123456789ab"}')
    assert read_old_ring(path) == RING
    path.write_text('["not", "a", "ring"]')
    with pytest.raises(ValueError, match="the old ring is JSON"):
        read_old_ring(path)
