"""The control history from before operators' keys, verified under the old shared HMAC ring and
signed again with an operator's key (`creditwindow keys migrate`).

Before operators held keys of their own, policy updates and operators' actions were signed with
HMAC-SHA256 by a ring every policy replica held, so whoever held a replica could sign. The fleet no
longer verifies those signatures at all. What they set up is carried over once, on an operator's
machine, with the old ring given as a file (never to the fleet): every policy version the old
fleet adopted, in the order it adopted them, and every suspension in force now. `carried_over` is
pure; the command reads the topics and publishes what it re-signs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from services.policy.care.desk import CustomerDesk
from services.policy.control.document import PolicyDocument, PolicyError, parse_policy
from shared.contracts import CustomerSuspended, Event, OperatorAction, PolicyUpdated, SuspensionLifted
from shared.signing import action_bytes, hmac_signed, policy_bytes

__all__ = ["Carried", "carried_over", "old_action_signature", "old_policy_signature", "old_ring_refusal", "read_old_ring"]

_OLD_POLICY_SCHEME = "creditwindow-policy-v2"
_OLD_ACTION_SCHEME = "creditwindow-operator-action-v1"


def read_old_ring(path: Path) -> dict[str, bytes]:
    """The old ring as its variable held it: JSON {"key id": "key"} (ValueError when it is not)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f'{path}: the old ring is JSON {{"key id": "key", ...}}, as CW_POLICY_SIGNING_KEYS held it')
    return {key_id: key.encode() for key_id, key in data.items()}


def old_policy_signature(key: bytes, update: PolicyUpdated) -> str:
    """The HMAC-SHA256 the old CLI signed a policy update with (its scheme v2: the namespace signed)."""
    fields = {name: getattr(update, name) for name in ("policy_name", "version", "document", "issued_by", "issued_at", "key_id", "namespace")}
    return hmac.new(key, policy_bytes(**fields, scheme=_OLD_POLICY_SCHEME), hashlib.sha256).hexdigest()


def old_action_signature(key: bytes, action: OperatorAction) -> str:
    """The HMAC-SHA256 the old CLI signed an operator's action with."""
    message = action_bytes(action.event_type, action.signed_fields(action.namespace), scheme=_OLD_ACTION_SCHEME)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _verifies(ring: Mapping[str, bytes], signed: PolicyUpdated | OperatorAction, namespace: str) -> bool:
    key = ring.get(signed.key_id)
    if key is None or not hmac_signed(signed.signature) or signed.namespace != namespace:
        return False
    made = old_policy_signature(key, signed) if isinstance(signed, PolicyUpdated) else old_action_signature(key, signed)
    return hmac.compare_digest(made, signed.signature)


def old_ring_refusal(ring: Mapping[str, bytes], action: OperatorAction, namespace: str) -> str | None:
    """Why an operator's action of the old fleet does not verify under its HMAC ring (None: it does):
    how the split's migration vouches for the actions on the retired mixed topics, which only the old
    fleet wrote (`creditwindow topics migrate --hmac-ring`)."""
    if action.key_id not in ring:
        return f"unknown_key: key {action.key_id!r} is not in the old ring given ({sorted(ring) or 'none: --hmac-ring'})"
    if not _verifies(ring, action, namespace):
        return "forged: its signature is not the old ring's HMAC for this fleet's namespace"
    return None


@dataclass(slots=True)
class Carried:
    """What the old fleet had set up: the versions it adopted, in order, and the suspensions in force."""

    versions: list[tuple[PolicyUpdated, PolicyDocument]] = field(default_factory=list)
    suspensions: list[CustomerSuspended] = field(default_factory=list)


def carried_over(
    policy_log: Iterable[Event], reviews_log: Iterable[Event], ring: Mapping[str, bytes], *, namespace: str, policy: PolicyDocument, now: datetime
) -> Carried:
    """The HMAC-signed history the old fleet accepted: each verifying policy update of `policy`'s name
    newer than the last one adopted (from `policy`, the one in force before the history), and the
    suspensions in force at `now` from the verifying actions, each customer's in the order issued."""
    carried, version = Carried(), policy.version
    for event in policy_log:
        if not isinstance(event, PolicyUpdated) or not _verifies(ring, event, namespace):
            continue
        try:
            document = parse_policy(event.document)
        except PolicyError:
            continue
        if document.name == policy.name == event.policy_name and document.version == event.version > version:
            carried.versions.append((event, document))
            version = document.version
    desk, latest = CustomerDesk(), {}
    for event in reviews_log:
        if isinstance(event, (CustomerSuspended, SuspensionLifted)) and _verifies(ring, event, namespace):
            if isinstance(event, CustomerSuspended) and desk.suspend(event) is not None:
                latest[event.customer_id] = event
            elif isinstance(event, SuspensionLifted):
                desk.lift(event)
    carried.suspensions = [latest[customer] for customer, s in sorted(desk.suspensions.items()) if s.active(now)]
    return carried
