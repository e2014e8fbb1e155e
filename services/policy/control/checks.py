"""The control plane: which policy is active, and whether a signed control event may take effect. Pure.

Every control event is signed with an operator's Ed25519 key and judged at the time it reached the
log (`logged_at`: the broker's time on the operators' topics), so every replica, live or restoring,
judges it the same. A signature is accepted only if, in this order:

1. it is an Ed25519 signature (the HMAC of the fleet's old shared ring is refused, never verified);
2. the key it names is in the fleet's public ring;
3. it verifies with that key over the signed fields and this fleet's topic namespace (one signed
   for another namespace is refused and says so);
4. it was not issued further after `logged_at` than the allowed clock skew;
5. it was neither issued nor logged after the key's retirement time.

Then, for a policy update (`check_update`): its document validates, says the same name and version
as the signed envelope, is for the policy this fleet runs, and is newer than the active version (an
old signed version replayed is refused), and is not a testing policy (`lending.testing`:
instalments and days shortened for the demo and the fault suite) while the fleet runs in
production. For an operator's action (`check_action`): it reached the log within the policy's
`customer_care.max_action_age` of being issued. For a key's retirement
(`check_retirement`): it does not reach back before it was issued; it takes effect from its
`retire_at`, or from when it reached the log if that is later, so nothing logged before it changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.policy.control.document import PolicyDocument, PolicyError, parse_policy
from shared.contracts import KeyRetired, OperatorAction, PolicyUpdated
from shared.signing import KeyRing, action_bytes, hmac_signed, policy_bytes

__all__ = [
    "MAX_CLOCK_SKEW",
    "Accepted",
    "Refused",
    "Retirement",
    "Signatures",
    "check_action",
    "check_retirement",
    "check_update",
    "newly_paused",
    "paused",
    "signed_fields",
    "unsafe_for",
]

MAX_CLOCK_SKEW = timedelta(minutes=5)


@dataclass(slots=True)
class Signatures:
    """How signed control events are verified in this fleet: the operators' public ring (retirements
    applied as they are read from the log), the topic namespace and the clock skew allowed."""

    ring: KeyRing
    namespace: str
    max_skew: timedelta = MAX_CLOCK_SKEW


@dataclass(frozen=True, slots=True)
class Accepted:
    document: PolicyDocument


@dataclass(frozen=True, slots=True)
class Retirement:
    """A verified retirement: `key_id` signs nothing after `at`."""

    key_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Refused:
    # unknown_key | hmac | forged | other_namespace | future | retired_key | stale | retroactive
    # | invalid_policy | tampered | replayed | other_policy | testing_policy
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


def _signature(
    signed: PolicyUpdated | OperatorAction, message: bytes, ring: KeyRing, namespace: str, logged_at: datetime, max_skew: timedelta
) -> Refused | None:
    """Rules 1-5 of the module's docstring: None when the signature is accepted."""
    if hmac_signed(signed.signature):
        return Refused(
            "hmac", "signed with the fleet's old shared HMAC ring, which no longer steers the fleet: sign it again with an operator key"
        )
    key = ring.get(signed.key_id)
    if key is None:
        return Refused("unknown_key", f"signed with key {signed.key_id!r}, not in this fleet's public ring {sorted(ring.keys)}")
    if not key.verifies(message, signed.signature):
        if signed.namespace != namespace:
            return Refused("other_namespace", f"signed for namespace {signed.namespace!r}, this fleet runs in {namespace!r}")
        return Refused("forged", "signature does not verify: forged, tampered or signed with another key")
    if signed.issued_at > logged_at + max_skew:
        return Refused(
            "future", f"issued at {signed.issued_at.isoformat()}, more than {max_skew} after it reached the log ({logged_at.isoformat()})"
        )
    if key.retired_for(signed.issued_at, logged_at):
        return Refused(
            "retired_key",
            f"key {key.key_id!r} retired at {key.retire_at.isoformat()}: this was issued at {signed.issued_at.isoformat()} "
            f"and reached the log at {logged_at.isoformat()}",
        )
    return None


def unsafe_for(document: PolicyDocument, environment: str) -> str | None:
    """Why a fleet in `environment` refuses this policy, or None: a testing policy runs in local and test only."""
    if document.lending.testing and environment not in ("local", "test"):
        return (
            f"policy {document.label} is a testing policy (lending.testing: instalments and days shortened); "
            f"CW_ENVIRONMENT={environment} runs only real ones"
        )
    return None


def check_update(
    update: PolicyUpdated,
    active: PolicyDocument,
    *,
    ring: KeyRing,
    namespace: str,
    logged_at: datetime,
    max_skew: timedelta = MAX_CLOCK_SKEW,
    environment: str = "local",
) -> Accepted | Refused:
    """Whether `update`, which reached the log at `logged_at`, may replace `active`."""
    message = policy_bytes(**signed_fields(update, namespace))  # type: ignore[arg-type]
    refused = _signature(update, message, ring, namespace, logged_at, max_skew)
    if refused is not None:
        return refused
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
    if (refusal := unsafe_for(document, environment)) is not None:
        return Refused("testing_policy", refusal)
    return Accepted(document)


def paused(policy: PolicyDocument, now: datetime) -> dict[str, set[str]]:
    """Every segment, region and channel the policy pauses at `now` (scheduled pauses included)."""
    return policy.pauses.at(now)


def newly_paused(old: PolicyDocument, new: PolicyDocument, now: datetime) -> dict[str, set[str]]:
    """Segments, regions and channels paused by the new version at `now` that were not paused before."""
    before, after = paused(old, now), paused(new, now)
    return {dimension: after[dimension] - before[dimension] for dimension in after}


def check_action(
    action: OperatorAction,
    *,
    ring: KeyRing,
    namespace: str,
    logged_at: datetime,
    max_age: timedelta,
    max_skew: timedelta = MAX_CLOCK_SKEW,
) -> Refused | None:
    """An operator's action on a customer (a review decided, a suspension, its lifting), which reached
    the log at `logged_at`: None when it may take effect. Besides its signature (the module's rules),
    it must have reached the log within `max_age` (the policy's `customer_care.max_action_age`) of
    being issued: an action held back or captured is not carried out later. An old action replayed
    inside that time changes nothing: the customer desk keeps each customer's actions in the order
    they were issued."""
    refused = _signature(action, action_bytes(action.event_type, action.signed_fields(namespace)), ring, namespace, logged_at, max_skew)
    if refused is not None:
        return refused
    if logged_at - action.issued_at > max_age:
        return Refused(
            "stale",
            f"issued at {action.issued_at.isoformat()}, it reached the log at {logged_at.isoformat()}: "
            f"more than the policy's max_action_age ({max_age}) later",
        )
    return None


def check_retirement(
    retirement: KeyRetired, *, ring: KeyRing, namespace: str, logged_at: datetime, max_skew: timedelta = MAX_CLOCK_SKEW
) -> Retirement | Refused:
    """A key's retirement, which reached the log at `logged_at`: from when the retired key signs
    nothing, or why it is refused. It never reaches back: before `issued_at`, or before the log had it."""
    message = action_bytes(retirement.event_type, retirement.signed_fields(namespace))
    refused = _signature(retirement, message, ring, namespace, logged_at, max_skew)
    if refused is not None:
        return refused
    if retirement.retire_at < retirement.issued_at:
        return Refused(
            "retroactive",
            f"retires {retirement.retired_key_id!r} at {retirement.retire_at.isoformat()}, before it was issued "
            f"({retirement.issued_at.isoformat()}): a key that leaked is taken out of the ring, not retired",
        )
    if ring.get(retirement.retired_key_id) is None:
        return Refused("unknown_key", f"retires {retirement.retired_key_id!r}, not in this fleet's public ring {sorted(ring.keys)}")
    return Retirement(retirement.retired_key_id, max(retirement.retire_at, logged_at))
