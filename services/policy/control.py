"""The control plane: which policy is active, and whether a `PolicyUpdated` may replace it. Pure.

An update takes effect only if its HMAC-SHA256 signature verifies with the configured key, its
document validates, the document says the same name and version as the signed envelope, and its
version is newer than the active one (an old signed version replayed is refused).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.policy.document import PolicyDocument, PolicyError, parse_policy
from shared.contracts import PolicyUpdated
from shared.signing import verify_policy

__all__ = ["Accepted", "Refused", "check_update", "newly_paused", "paused"]


@dataclass(frozen=True, slots=True)
class Accepted:
    document: PolicyDocument


@dataclass(frozen=True, slots=True)
class Refused:
    error_type: str  # unknown_key | forged | invalid_policy | tampered | replayed | other_policy
    error: str


def check_update(update: PolicyUpdated, active: PolicyDocument, *, key: bytes, key_id: str) -> Accepted | Refused:
    if update.key_id != key_id:
        return Refused("unknown_key", f"signed with key {update.key_id!r}, this fleet verifies with {key_id!r}")
    fields = {
        "policy_name": update.policy_name,
        "version": update.version,
        "document": update.document,
        "issued_by": update.issued_by,
        "issued_at": update.issued_at,
        "key_id": update.key_id,
    }
    if not verify_policy(key, update.signature, **fields):
        return Refused("forged", "signature does not verify: forged, tampered or signed with another key")
    try:
        document = parse_policy(update.document)
    except PolicyError as exc:
        return Refused("invalid_policy", str(exc))
    if document.name != update.policy_name or document.version != update.version:
        return Refused("tampered", f"document says {document.label}, envelope says {update.policy_name}@{update.version}")
    if document.name != active.name:
        return Refused("other_policy", f"this fleet runs policy {active.name!r}, not {document.name!r}")
    if document.version <= active.version:
        return Refused("replayed", f"version {document.version} is not newer than the active {active.label}")
    return Accepted(document)


def paused(policy: PolicyDocument) -> dict[str, set[str]]:
    """Every segment, region and channel the policy pauses."""
    return {"segment": set(policy.pauses.segments), "region": set(policy.pauses.regions), "channel": set(policy.pauses.channels)}


def newly_paused(old: PolicyDocument, new: PolicyDocument) -> dict[str, set[str]]:
    """Segments, regions and channels paused by the new version that were not paused before."""
    before, after = paused(old), paused(new)
    return {dimension: after[dimension] - before[dimension] for dimension in after}
