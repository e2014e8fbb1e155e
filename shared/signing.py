"""HMAC-SHA256 signatures of policy updates: the operators' CLI signs, the policy service verifies."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

__all__ = ["sign_policy", "signed_bytes", "verify_policy"]


def signed_bytes(*, policy_name: str, version: int, document: str, issued_by: str, issued_at: datetime, key_id: str) -> bytes:
    """The canonical bytes a signature covers: every field that steers the fleet, and the document's hash."""
    digest = hashlib.sha256(document.encode("utf-8")).hexdigest()
    return "\n".join(
        ["creditwindow-policy-v1", policy_name, str(version), issued_by, issued_at.isoformat(), key_id, digest]
    ).encode("utf-8")


def sign_policy(key: bytes, **fields: object) -> str:
    return hmac.new(key, signed_bytes(**fields), hashlib.sha256).hexdigest()  # type: ignore[arg-type]


def verify_policy(key: bytes, signature: str, **fields: object) -> bool:
    return hmac.compare_digest(sign_policy(key, **fields), signature)
