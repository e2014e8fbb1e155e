"""HMAC-SHA256 signatures of policy updates, and the key ring that makes them. Pure.

The operators' CLI signs with the ring's signing key; every policy replica verifies with whichever
key of the ring the update names. A key is rotated by adding the new one, making it the signing
key, and retiring the old one: a retired key still verifies the history it signed (so a restarted
replica restores every version) but signs nothing new. A key that leaked is removed, not retired.

The signature covers every field that steers the fleet, the document's hash, and the fleet's topic
namespace: an update signed for one namespace (a test run, a shadow) is refused in another.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "KeyRing",
    "SigningRefused",
    "action_bytes",
    "sign_action",
    "sign_policy",
    "signed_bytes",
    "signed_without_namespace",
    "verify_action",
    "verify_policy",
]

SCHEME = "creditwindow-policy-v2"
_SCHEME_V1 = "creditwindow-policy-v1"  # before the namespace was signed: recognised, never accepted


class SigningRefused(ValueError):
    """The ring cannot sign: its signing key is missing or retired (the message says which)."""


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Policy keys by id, the id new updates are signed with, and the ids retired from signing."""

    keys: Mapping[str, bytes]
    signing_key_id: str
    retired: frozenset[str] = field(default_factory=frozenset)

    def verifying_key(self, key_id: str) -> bytes | None:
        """The key that verifies updates naming `key_id` (retired ones included), or None."""
        return self.keys.get(key_id)

    def signing_key(self) -> tuple[str, bytes]:
        """The id and key that sign a new update; SigningRefused when that key is retired or missing."""
        key_id = self.signing_key_id
        if key_id in self.retired:
            raise SigningRefused(
                f"CW_POLICY_SIGNING_KEY_ID: key {key_id!r} is retired (CW_POLICY_RETIRED_KEY_IDS): "
                "it verifies history but signs nothing new; sign with an active key"
            )
        key = self.keys.get(key_id)
        if key is None:
            raise SigningRefused(
                f"CW_POLICY_SIGNING_KEY_ID: key {key_id!r} is not in the key ring "
                f"(CW_POLICY_SIGNING_KEYS has {sorted(self.keys)})"
            )
        return key_id, key


def signed_bytes(
    *,
    policy_name: str,
    version: int,
    document: str,
    issued_by: str,
    issued_at: datetime,
    key_id: str,
    namespace: str,
    scheme: str = SCHEME,
) -> bytes:
    """The canonical bytes a signature covers: every field that steers the fleet, the document's hash
    and the namespace of the topics it is published to."""
    digest = hashlib.sha256(document.encode("utf-8")).hexdigest()
    parts = [scheme, policy_name, str(version), issued_by, issued_at.isoformat(), key_id, digest]
    if scheme != _SCHEME_V1:
        parts.append(namespace)
    return "\n".join(parts).encode("utf-8")


def sign_policy(key: bytes, **fields: object) -> str:
    return hmac.new(key, signed_bytes(**fields), hashlib.sha256).hexdigest()  # type: ignore[arg-type]


def verify_policy(key: bytes, signature: str, **fields: object) -> bool:
    return hmac.compare_digest(sign_policy(key, **fields), signature)


def signed_without_namespace(key: bytes, signature: str, **fields: object) -> bool:
    """Whether the signature is an old one that did not cover the namespace (refused, with that reason)."""
    return hmac.compare_digest(sign_policy(key, **{**fields, "scheme": _SCHEME_V1}), signature)


# Operators' actions on customers (a review decided, a suspension, its lifting) are signed with the
# same key ring as policy updates, over a canonical JSON of every field that steers the fleet.
ACTION_SCHEME = "creditwindow-operator-action-v1"


def action_bytes(event_type: str, fields: Mapping[str, Any]) -> bytes:
    """The canonical bytes an operator action's signature covers: the scheme, the action's type and its
    fields (JSON values, keys sorted), the topic namespace among them."""
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return f"{ACTION_SCHEME}\n{event_type}\n{body}".encode()


def sign_action(key: bytes, event_type: str, fields: Mapping[str, Any]) -> str:
    return hmac.new(key, action_bytes(event_type, fields), hashlib.sha256).hexdigest()


def verify_action(key: bytes, signature: str, event_type: str, fields: Mapping[str, Any]) -> bool:
    return hmac.compare_digest(sign_action(key, event_type, fields), signature)
