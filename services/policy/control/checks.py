"""The control plane: which policy is active, and whether a `PolicyUpdated` may replace it. Pure.

An update takes effect only if, in this order:

1. the key it names is in the fleet's key ring (retired keys included: they verify history);
2. its HMAC-SHA256 signature verifies with that key over the signed fields and this fleet's topic
   namespace (an update signed for another namespace, or by a CLI that did not sign the namespace,
   is refused and says so);
3. it was not issued further in the future than the allowed clock skew;
4. its document validates, and says the same name and version as the signed envelope;
5. it is for the policy this fleet runs, and its version is newer than the active one (an old
   signed version replayed is refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.policy.control.document import PolicyDocument, PolicyError, parse_policy
from shared.contracts import OperatorAction, PolicyUpdated
from shared.signing import KeyRing, signed_without_namespace, verify_action, verify_policy

__all__ = ["MAX_CLOCK_SKEW", "Accepted", "Refused", "Signatures", "check_action", "check_update", "newly_paused", "paused", "signed_fields"]

MAX_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Signatures:
    """How signed updates and operator actions are verified in this fleet."""

    ring: KeyRing
    namespace: str
    max_skew: timedelta = MAX_CLOCK_SKEW


@dataclass(frozen=True, slots=True)
class Accepted:
    document: PolicyDocument


@dataclass(frozen=True, slots=True)
class Refused:
    # unknown_key | forged | other_namespace | unbound | future | invalid_policy | tampered | replayed | other_policy
    error_type: str
    error: str


def signed_fields(update: PolicyUpdated, namespace: str) -> dict[str, object]:
    """What the signature of `update` covers, in the fleet whose topic namespace is `namespace`."""
    return {
        "policy_name": update.policy_name,
        "version": update.version,
        "document": update.document,
        "issued_by": update.issued_by,
        "issued_at": update.issued_at,
        "key_id": update.key_id,
        "namespace": namespace,
    }


def check_update(
    update: PolicyUpdated,
    active: PolicyDocument,
    *,
    ring: KeyRing,
    namespace: str,
    now: datetime,
    max_skew: timedelta = MAX_CLOCK_SKEW,
) -> Accepted | Refused:
    key = ring.verifying_key(update.key_id)
    if key is None:
        return Refused(
            "unknown_key", f"signed with key {update.key_id!r}, not in this fleet's key ring {sorted(ring.keys)}"
        )
    fields = signed_fields(update, namespace)
    if not verify_policy(key, update.signature, **fields):
        if update.namespace != namespace:
            return Refused(
                "other_namespace", f"signed for namespace {update.namespace!r}, this fleet runs in {namespace!r}"
            )
        if signed_without_namespace(key, update.signature, **fields):
            return Refused("unbound", "signed without the topic namespace (an older CLI): apply it again")
        return Refused("forged", "signature does not verify: forged, tampered or signed with another key")
    if update.issued_at > now + max_skew:
        return Refused(
            "future", f"issued at {update.issued_at.isoformat()}, more than {max_skew} after now ({now.isoformat()})"
        )
    try:
        document = parse_policy(update.document)
    except PolicyError as exc:
        return Refused("invalid_policy", str(exc))
    if document.name != update.policy_name or document.version != update.version:
        return Refused(
            "tampered", f"document says {document.label}, envelope says {update.policy_name}@{update.version}"
        )
    if document.name != active.name:
        return Refused("other_policy", f"this fleet runs policy {active.name!r}, not {document.name!r}")
    if document.version <= active.version:
        return Refused("replayed", f"version {document.version} is not newer than the active {active.label}")
    return Accepted(document)


def paused(policy: PolicyDocument, now: datetime) -> dict[str, set[str]]:
    """Every segment, region and channel the policy pauses at `now` (scheduled pauses included)."""
    return policy.pauses.at(now)


def newly_paused(old: PolicyDocument, new: PolicyDocument, now: datetime) -> dict[str, set[str]]:
    """Segments, regions and channels paused by the new version at `now` that were not paused before."""
    before, after = paused(old, now), paused(new, now)
    return {dimension: after[dimension] - before[dimension] for dimension in after}


def check_action(
    action: OperatorAction, *, ring: KeyRing, namespace: str, now: datetime, max_skew: timedelta = MAX_CLOCK_SKEW
) -> Refused | None:
    """An operator's action on a customer (a review decided, a suspension, its lifting): None when it
    may take effect. Its key must be in the ring, its signature verify over every field and this
    fleet's namespace, and it must not come from the future. An old action replayed changes nothing:
    the customer desk keeps each customer's actions in the order they were issued."""
    key = ring.verifying_key(action.key_id)
    if key is None:
        return Refused("unknown_key", f"signed with key {action.key_id!r}, not in this fleet's key ring {sorted(ring.keys)}")
    if not verify_action(key, action.signature, action.event_type, action.signed_fields(namespace)):
        if action.namespace != namespace:
            return Refused("other_namespace", f"signed for namespace {action.namespace!r}, this fleet runs in {namespace!r}")
        return Refused("forged", "signature does not verify: forged, tampered or signed with another key")
    if action.issued_at > now + max_skew:
        return Refused("future", f"issued at {action.issued_at.isoformat()}, more than {max_skew} after now ({now.isoformat()})")
    return None
