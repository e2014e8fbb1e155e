"""Operators' signatures over the fleet's control events, and the public keys the fleet checks them with. Pure.

Control events are policy updates (`PolicyUpdated`), operators' actions on customers (`ReviewDecided`,
`CustomerSuspended`, `SuspensionLifted`) and key retirements (`KeyRetired`). They are signed with
Ed25519 (`shared/ed25519.py`):

- an operator holds a private key (`OperatorKey`: an id and 32 secret bytes, written
  `<key id>:<base64>`, in a file or a variable only the CLI reads);
- the fleet holds the public ring (`KeyRing`: key id -> `PublicKey`, its public key and its
  retirement time), so nothing a replica holds can sign;
- a key signs nothing after its retirement time: an event issued after it, or that reached the log
  after it, is refused. A signed `KeyRetired` brings a key's retirement forward, never back; a key
  that leaked is taken out of the ring, which voids everything it ever signed.

The signature covers every field that steers the fleet and the fleet's topic namespace: what was
signed for one namespace (a test run, a shadow) is refused in another. Before operator keys, the
fleet itself held an HMAC-SHA256 ring and could sign: such signatures (32 bytes, 64 hex digits) are
recognised, to be refused with that reason, and never verified (docs/security.md, "Migration").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared import ed25519

__all__ = [
    "ACTION_SCHEME",
    "KEY_ID_PATTERN",
    "POLICY_SCHEME",
    "KeyRing",
    "OperatorKey",
    "PublicKey",
    "SigningRefused",
    "action_bytes",
    "decode_public_key",
    "encode_key",
    "hmac_signed",
    "policy_bytes",
]

POLICY_SCHEME = "creditwindow-policy-ed25519-v1"
ACTION_SCHEME = "creditwindow-operator-action-ed25519-v1"
KEY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_HMAC_HEX = 64  # an HMAC-SHA256 signature of before operator keys; an Ed25519 one is 128


class SigningRefused(ValueError):
    """No private key to sign with, or one that cannot be used (the message says which variable and why)."""


def encode_key(raw: bytes) -> str:
    """A key's bytes as written in settings and key files: standard base64."""
    return base64.b64encode(raw).decode("ascii")


def decode_public_key(text: str) -> bytes:
    """The 32 bytes of a base64 Ed25519 public key (ValueError when it is not one)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a public key is the base64 of 32 bytes (as `creditwindow keys new` prints it)") from None
    if len(raw) != ed25519.PUBLIC_KEY_BYTES:
        raise ValueError(f"a public key is 32 bytes, this one is {len(raw)}")
    return raw


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An operator's public key as the fleet holds it, and the time after which it signs nothing."""

    key_id: str
    public: bytes
    retire_at: datetime

    def retired_for(self, issued_at: datetime, logged_at: datetime) -> bool:
        """Whether an event issued at `issued_at` that reached the log at `logged_at` comes after this key's retirement."""
        return issued_at > self.retire_at or logged_at > self.retire_at

    def verifies(self, message: bytes, signature: str) -> bool:
        """Whether `signature` (hex) is this key's signature of `message`."""
        try:
            raw = bytes.fromhex(signature)
        except ValueError:
            return False
        return ed25519.verify(self.public, message, raw)


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The operators' public keys by id: what the fleet verifies control events with."""

    keys: Mapping[str, PublicKey] = field(default_factory=dict)

    def get(self, key_id: str) -> PublicKey | None:
        return self.keys.get(key_id)

    def retire(self, key_id: str, at: datetime) -> KeyRing:
        """The ring with `key_id` retired at `at`, or at its own retirement time if that is earlier."""
        key = self.keys.get(key_id)
        if key is None or key.retire_at <= at:
            return self
        return KeyRing({**self.keys, key_id: replace(key, retire_at=at)})

    def may_sign(self, at: datetime) -> list[str]:
        """The ids of the keys whose signature the fleet accepts on what is issued at `at`."""
        return sorted(key_id for key_id, key in self.keys.items() if at <= key.retire_at)


@dataclass(frozen=True, slots=True)
class OperatorKey:
    """An operator's private key: its id in the fleet's ring and its 32 secret bytes (never shown)."""

    key_id: str
    seed: bytes = field(repr=False)

    @classmethod
    def parse(cls, text: str, *, source: str) -> OperatorKey:
        """Read `<key id>:<base64>` (lines starting with `#` ignored); SigningRefused names `source`."""
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
        if len(lines) != 1 or ":" not in lines[0]:
            raise SigningRefused(f"{source}: an operator key is one line `<key id>:<base64 private key>` (`creditwindow keys new` writes it)")
        key_id, encoded = lines[0].split(":", 1)
        if not re.match(KEY_ID_PATTERN, key_id):
            raise SigningRefused(f"{source}: {key_id!r} is not a key id (letters, digits, `.`, `_`, `-`; at most 64)")
        try:
            seed = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            seed = b""
        if len(seed) != ed25519.SEED_BYTES:
            raise SigningRefused(f"{source}: the private key of {key_id!r} is not the base64 of {ed25519.SEED_BYTES} bytes")
        return cls(key_id, seed)

    def text(self) -> str:
        """The key as a key file holds it: `<key id>:<base64>`."""
        return f"{self.key_id}:{encode_key(self.seed)}"

    @property
    def public(self) -> bytes:
        return ed25519.public_key(self.seed)

    def sign(self, message: bytes) -> str:
        """The Ed25519 signature of `message`, hex."""
        return ed25519.sign(self.seed, message).hex()


def hmac_signed(signature: str) -> bool:
    """Whether a signature is an HMAC-SHA256 of the fleet's old shared ring (refused, never verified)."""
    return len(signature) == _HMAC_HEX


def policy_bytes(
    *, policy_name: str, version: int, document: str, issued_by: str, issued_at: datetime, key_id: str, namespace: str,
    scheme: str = POLICY_SCHEME,
) -> bytes:  # fmt: skip
    """What a policy update's signature covers: every field that steers the fleet, the document's
    hash and the namespace of the topics it is published to (`scheme`: another only to read the old ring's)."""
    digest = hashlib.sha256(document.encode("utf-8")).hexdigest()
    parts = [scheme, policy_name, str(version), issued_by, issued_at.isoformat(), key_id, digest, namespace]
    return "\n".join(parts).encode("utf-8")


def action_bytes(event_type: str, fields: Mapping[str, Any], *, scheme: str = ACTION_SCHEME) -> bytes:
    """What an operator action's signature covers: the scheme, the action's type and its fields (JSON
    values, keys sorted), the topic namespace among them."""
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return f"{scheme}\n{event_type}\n{body}".encode()
