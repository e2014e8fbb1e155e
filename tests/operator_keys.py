"""Operators' keys for tests: key pairs made from a name (the same in every run), the ring the
fleet's settings read, and an operator whose key the fleet does not know (a forger)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from pydantic import SecretStr

from shared.settings import OperatorPublicKey, Settings
from shared.signing import OperatorKey, encode_key

__all__ = ["FAR", "forger", "operator", "ring_json", "signing_as"]

FAR = datetime.fromisoformat("2999-01-01T00:00:00+00:00")  # a retirement no test reaches


def operator(key_id: str, name: str | None = None) -> OperatorKey:
    """A key pair made from `name` (default: the id): the same in every run."""
    return OperatorKey(key_id, hashlib.sha256(f"creditwindow-test-operator-{name or key_id}".encode()).digest())


def ring_json(*keys: OperatorKey, retire_at: dict[str, datetime] | None = None) -> str:
    """CW_OPERATOR_PUBLIC_KEYS of these keys (each retiring far away unless `retire_at` says)."""
    when = retire_at or {}
    return json.dumps({k.key_id: {"public_key": encode_key(k.public), "retire_at": when.get(k.key_id, FAR).isoformat()} for k in keys})


def signing_as(settings: Settings, key: OperatorKey, *ring: OperatorKey) -> Settings:
    """`settings` as an operators' CLI holding `key`, with the ring `ring` (default: that key alone)."""
    keys = ring or (key,)
    public = {k.key_id: OperatorPublicKey(public_key=encode_key(k.public), retire_at=FAR) for k in keys}
    return settings.model_copy(update={"operator_public_keys": public, "operator_private_key": SecretStr(key.text())})


def forger(settings: Settings, key_id: str = "dev") -> Settings:
    """`settings` as a CLI that signs with a key of another ring under `key_id`: the fleet, which has
    its own key under that id, finds every signature forged."""
    return signing_as(settings, operator(key_id, name="forger"))
