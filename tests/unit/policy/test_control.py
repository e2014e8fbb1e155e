"""Only signed, valid, newer policy versions take effect."""

from __future__ import annotations

from datetime import UTC, datetime

import yaml

from services.policy.control import Accepted, Refused, check_update, newly_paused
from shared.contracts import PolicyUpdated
from shared.signing import sign_policy
from tests.unit.policy.factories import default_policy

KEY = b"unit-test-key"


def _update(version: int = 2, *, key: bytes = KEY, key_id: str = "k1", tamper: bool = False, **changes: object) -> PolicyUpdated:
    data = default_policy().model_dump(mode="json")
    data["version"] = version
    data.update(changes)
    document = yaml.safe_dump(data)
    fields = {
        "policy_name": "default",
        "version": version,
        "document": document,
        "issued_by": "op_7",
        "issued_at": datetime(2026, 11, 28, tzinfo=UTC),
        "key_id": key_id,
    }
    signature = sign_policy(key, **fields)
    if tamper:
        fields["document"] = document.replace("cycle_factor: 1.0", "cycle_factor: 2.0")
    return PolicyUpdated(correlation_id="policy-default-2", producer="test", signature=signature, **fields)  # type: ignore[arg-type]


def test_a_signed_newer_version_is_accepted() -> None:
    result = check_update(_update(2), default_policy(), key=KEY, key_id="k1")
    assert isinstance(result, Accepted) and result.document.version == 2


def test_a_forged_signature_is_refused() -> None:
    result = check_update(_update(2, key=b"someone-else"), default_policy(), key=KEY, key_id="k1")
    assert isinstance(result, Refused) and result.error_type == "forged"


def test_a_tampered_document_is_refused() -> None:
    result = check_update(_update(2, tamper=True), default_policy(), key=KEY, key_id="k1")
    assert isinstance(result, Refused) and result.error_type == "forged"


def test_a_replayed_old_version_is_refused() -> None:
    active = check_update(_update(3), default_policy(), key=KEY, key_id="k1")
    assert isinstance(active, Accepted)
    result = check_update(_update(2), active.document, key=KEY, key_id="k1")
    assert isinstance(result, Refused) and result.error_type == "replayed"


def test_an_unknown_key_id_is_refused() -> None:
    result = check_update(_update(2, key_id="k9"), default_policy(), key=KEY, key_id="k1")
    assert isinstance(result, Refused) and result.error_type == "unknown_key"


def test_a_signed_but_invalid_document_is_refused_with_the_field() -> None:
    result = check_update(_update(2, cycle_factor=9), default_policy(), key=KEY, key_id="k1")
    assert isinstance(result, Refused) and result.error_type == "invalid_policy"
    assert "cycle_factor" in result.error


def test_newly_paused_lists_only_new_pauses() -> None:
    old = default_policy(pauses__regions=["CN-BJ"])
    new = default_policy(pauses__regions=["CN-BJ", "CN-SH"], pauses__segments=["small_business"])
    assert newly_paused(old, new) == {"segment": {"small_business"}, "region": {"CN-SH"}, "channel": set()}
