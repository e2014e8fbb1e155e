"""Only signed, valid, newer policy versions take effect: operators' Ed25519 keys, their retirement,
the namespace, the time the update reached the log."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

import yaml

from services.policy.control.checks import Accepted, Refused, check_update, newly_paused
from services.policy.control.document import PolicyDocument
from shared.contracts import PolicyUpdated
from shared.signing import KeyRing, OperatorKey, PublicKey, policy_bytes
from tests.clocks import NOW
from tests.unit.policy.factories import default_policy

KEY = OperatorKey("k1", bytes(range(32)))
K2 = OperatorKey("k2", bytes(range(1, 33)))
RETIRES = NOW + timedelta(days=90)


def ring(*keys: OperatorKey, retire_at: datetime = RETIRES) -> KeyRing:
    return KeyRing({key.key_id: PublicKey(key.key_id, key.public, retire_at) for key in keys})


RING = ring(KEY)


def _update(
    version: int = 2,
    *,
    key: OperatorKey = KEY,
    key_id: str | None = None,
    tamper: bool = False,
    namespace: str = "",
    issued_at: datetime = NOW - timedelta(minutes=1),
    **changes: object,
) -> PolicyUpdated:
    data = default_policy().model_dump(mode="json")
    data["version"] = version
    data.update(changes)
    document = yaml.safe_dump(data)
    fields = {
        "policy_name": "default",
        "version": version,
        "document": document,
        "issued_by": "op_7",
        "issued_at": issued_at,
        "key_id": key_id or key.key_id,
        "namespace": namespace,
    }
    signature = key.sign(policy_bytes(**fields))  # type: ignore[arg-type]
    if tamper:
        fields["document"] = document.replace("cycle_factor: 1.0", "cycle_factor: 2.0")
    return PolicyUpdated(correlation_id="policy-default-2", producer="test", signature=signature, **fields)  # type: ignore[arg-type]


def check(
    update: PolicyUpdated, active: PolicyDocument | None = None, *, ring: KeyRing = RING, namespace: str = "", logged_at: datetime = NOW
) -> Accepted | Refused:
    return check_update(update, active or default_policy(), ring=ring, namespace=namespace, logged_at=logged_at)


def test_a_signed_newer_version_is_accepted() -> None:
    result = check(_update(2))
    assert isinstance(result, Accepted) and result.document.version == 2


def test_a_forged_signature_is_refused() -> None:
    result = check(_update(2, key=OperatorKey("k1", b"someone-else-entirely-0123456789")))
    assert isinstance(result, Refused) and result.error_type == "forged"


def test_a_key_of_another_ring_under_an_id_of_this_one_is_refused() -> None:
    # Another deployment's k1 (or a test run's) signs nothing this fleet accepts.
    result = check(_update(2, key=K2, key_id="k1"), ring=ring(KEY, K2))
    assert isinstance(result, Refused) and result.error_type == "forged"


def test_an_hmac_of_the_old_shared_ring_is_refused_as_such_and_never_verified() -> None:
    update = _update(2)
    old = hmac.new(b"the-fleets-old-shared-key", policy_bytes(**{f: getattr(update, f) for f in (
        "policy_name", "version", "document", "issued_by", "issued_at", "key_id", "namespace")}), hashlib.sha256).hexdigest()  # fmt: skip
    result = check(update.model_copy(update={"signature": old}))
    assert isinstance(result, Refused) and result.error_type == "hmac" and "operator key" in result.error


def test_a_tampered_document_is_refused() -> None:
    result = check(_update(2, tamper=True))
    assert isinstance(result, Refused) and result.error_type == "forged"


def test_a_replayed_old_version_is_refused() -> None:
    active = check(_update(3))
    assert isinstance(active, Accepted)
    result = check(_update(2), active.document)
    assert isinstance(result, Refused) and result.error_type == "replayed"


def test_an_unknown_key_id_is_refused() -> None:
    result = check(_update(2, key_id="k9"))
    assert isinstance(result, Refused) and result.error_type == "unknown_key"


def test_a_signed_but_invalid_document_is_refused_with_the_field() -> None:
    result = check(_update(2, cycle_factor=9))
    assert isinstance(result, Refused) and result.error_type == "invalid_policy"
    assert "cycle_factor" in result.error


def test_newly_paused_lists_only_new_pauses() -> None:
    old = default_policy(pauses__regions=["CN-BJ"])
    new = default_policy(pauses__regions=["CN-BJ", "CN-SH"], pauses__segments=["small_business"])
    assert newly_paused(old, new, NOW) == {"segment": {"small_business"}, "region": {"CN-SH"}, "channel": set()}


def test_after_a_rotation_history_signed_by_the_old_key_and_new_versions_by_the_new_one_all_verify() -> None:
    rotated = ring(KEY, K2).retire("k1", NOW - timedelta(hours=1))
    first = check(_update(2, key=KEY, issued_at=NOW - timedelta(hours=3)), ring=rotated, logged_at=NOW - timedelta(hours=3))
    assert isinstance(first, Accepted)
    second = check(_update(3, key=K2), first.document, ring=rotated)
    assert isinstance(second, Accepted) and second.document.version == 3


def test_a_retired_key_signs_nothing_issued_after_its_retirement() -> None:
    retired = ring(KEY, retire_at=NOW - timedelta(hours=1))
    result = check(_update(2, issued_at=NOW - timedelta(minutes=30)), ring=retired, logged_at=NOW - timedelta(minutes=30))
    assert isinstance(result, Refused) and result.error_type == "retired_key" and "'k1' retired at" in result.error


def test_a_retired_key_cannot_back_date_an_update_past_its_retirement() -> None:
    # Issued (it says) before the retirement, but it reached the log after it: refused.
    retired = ring(KEY, retire_at=NOW - timedelta(hours=1))
    result = check(_update(2, issued_at=NOW - timedelta(hours=2)), ring=retired, logged_at=NOW)
    assert isinstance(result, Refused) and result.error_type == "retired_key"


def test_an_update_a_key_signed_and_logged_before_its_retirement_still_verifies_later() -> None:
    retired = ring(KEY, retire_at=NOW - timedelta(hours=1))
    result = check(_update(2, issued_at=NOW - timedelta(hours=2)), ring=retired, logged_at=NOW - timedelta(hours=2))
    assert isinstance(result, Accepted)


def test_an_update_signed_for_another_namespace_is_refused() -> None:
    result = check(_update(2, namespace="staging"), namespace="")
    assert isinstance(result, Refused) and result.error_type == "other_namespace"


def test_an_update_claiming_this_namespace_but_signed_for_another_is_forged() -> None:
    update = _update(2, namespace="staging").model_copy(update={"namespace": "prod"})
    result = check(update, namespace="prod")
    assert isinstance(result, Refused) and result.error_type == "forged"


def test_an_update_issued_in_the_future_beyond_the_skew_is_refused() -> None:
    result = check(_update(2, issued_at=NOW + timedelta(minutes=6)))
    assert isinstance(result, Refused) and result.error_type == "future" and "after it reached the log" in result.error


def test_an_update_issued_a_little_ahead_within_the_skew_is_accepted() -> None:
    assert isinstance(check(_update(2, issued_at=NOW + timedelta(minutes=4))), Accepted)
