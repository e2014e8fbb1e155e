"""Only signed, valid, newer policy versions take effect: a key ring, the namespace, the clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import yaml

from services.policy.control.checks import Accepted, Refused, check_update, newly_paused
from services.policy.control.document import PolicyDocument
from shared.contracts import PolicyUpdated
from shared.signing import KeyRing, SigningRefused, sign_policy
from tests.clocks import NOW
from tests.unit.policy.factories import default_policy

KEY = b"unit-test-key"
K2 = b"unit-test-key-two"
RING = KeyRing(keys={"k1": KEY}, signing_key_id="k1")


def _update(
    version: int = 2,
    *,
    key: bytes = KEY,
    key_id: str = "k1",
    tamper: bool = False,
    namespace: str = "",
    issued_at: datetime = NOW - timedelta(hours=1),
    scheme: str | None = None,
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
        "key_id": key_id,
        "namespace": namespace,
    }
    signature = sign_policy(key, **fields, **({"scheme": scheme} if scheme else {}))
    if tamper:
        fields["document"] = document.replace("cycle_factor: 1.0", "cycle_factor: 2.0")
    return PolicyUpdated(correlation_id="policy-default-2", producer="test", signature=signature, **fields)  # type: ignore[arg-type]


def check(
    update: PolicyUpdated, active: PolicyDocument | None = None, *, ring: KeyRing = RING, namespace: str = ""
) -> Accepted | Refused:
    return check_update(update, active or default_policy(), ring=ring, namespace=namespace, now=NOW)


def test_a_signed_newer_version_is_accepted() -> None:
    result = check(_update(2))
    assert isinstance(result, Accepted) and result.document.version == 2


def test_a_forged_signature_is_refused() -> None:
    result = check(_update(2, key=b"someone-else"))
    assert isinstance(result, Refused) and result.error_type == "forged"


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
    rotated = KeyRing(keys={"k1": KEY, "k2": K2}, signing_key_id="k2", retired=frozenset({"k1"}))
    first = check(_update(2, key=KEY, key_id="k1"), ring=rotated)
    assert isinstance(first, Accepted)
    second = check(_update(3, key=K2, key_id="k2"), first.document, ring=rotated)
    assert isinstance(second, Accepted) and second.document.version == 3


def test_a_retired_key_verifies_but_signs_nothing_new() -> None:
    rotated = KeyRing(keys={"k1": KEY, "k2": K2}, signing_key_id="k1", retired=frozenset({"k1"}))
    assert rotated.verifying_key("k1") == KEY
    with pytest.raises(SigningRefused, match="CW_POLICY_SIGNING_KEY_ID: key 'k1' is retired"):
        rotated.signing_key()


def test_a_signing_key_missing_from_the_ring_is_named() -> None:
    with pytest.raises(SigningRefused, match="not in the key ring"):
        KeyRing(keys={"k2": K2}, signing_key_id="k1").signing_key()


def test_an_update_signed_for_another_namespace_is_refused() -> None:
    result = check(_update(2, namespace="staging"), namespace="")
    assert isinstance(result, Refused) and result.error_type == "other_namespace"


def test_an_update_claiming_this_namespace_but_signed_for_another_is_forged() -> None:
    update = _update(2, namespace="staging").model_copy(update={"namespace": "prod"})
    result = check(update, namespace="prod")
    assert isinstance(result, Refused) and result.error_type == "forged"


def test_an_update_signed_without_the_namespace_is_refused_as_unbound() -> None:
    result = check(_update(2, scheme="creditwindow-policy-v1"))
    assert isinstance(result, Refused) and result.error_type == "unbound" and "apply it again" in result.error


def test_an_update_issued_in_the_future_beyond_the_skew_is_refused() -> None:
    result = check(_update(2, issued_at=NOW + timedelta(minutes=6)))
    assert isinstance(result, Refused) and result.error_type == "future"


def test_an_update_issued_a_little_ahead_within_the_skew_is_accepted() -> None:
    assert isinstance(check(_update(2, issued_at=NOW + timedelta(minutes=4))), Accepted)
