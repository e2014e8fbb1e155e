"""Operators' keys: the key an operator signs with, new key pairs, and signed retirements.

An operator's private key stays with the operator (a file only its owner reads, or a variable of the
CLI's environment); the fleet holds the public ring, `CW_OPERATOR_PUBLIC_KEYS`, each key with its
retirement time. A key is retired early by a signed `KeyRetired` on `credit.policy`, which every
policy replica reads in order with the policy updates (shared/signing.py).
"""

from __future__ import annotations

import json
import os
import secrets
from datetime import datetime
from pathlib import Path

from shared import ed25519
from shared.contracts import KeyRetired
from shared.messaging.topic_io import Publisher
from shared.settings import Settings
from shared.signing import OperatorKey, SigningRefused, action_bytes, encode_key

__all__ = ["new_key", "publish_retirement", "ring_entry", "signed_retirement", "signing_key", "write_key_file"]


def signing_key(settings: Settings) -> OperatorKey:
    """This operator's private key, if the ring the fleet loads (CW_OPERATOR_PUBLIC_KEYS) has its
    public key and it is not retired now; SigningRefused says why not."""
    key = settings.operator_key()
    ring = settings.operator_ring
    public = ring.get(key.key_id)
    if public is None:
        raise SigningRefused(
            f"key {key.key_id!r} is not in the fleet's public ring (CW_OPERATOR_PUBLIC_KEYS has {sorted(ring.keys)}): "
            "add its public key there, and to the fleet's, first"
        )
    if public.public != key.public:
        raise SigningRefused(f"CW_OPERATOR_PUBLIC_KEYS: the public key of {key.key_id!r} is not this private key's")
    now = settings.clock().now()
    if now > public.retire_at:
        raise SigningRefused(
            f"key {key.key_id!r} retired at {public.retire_at.isoformat()}: it signs nothing new; "
            f"sign with a key that may sign now ({', '.join(ring.may_sign(now)) or 'none'})"
        )
    return key


def new_key(key_id: str) -> OperatorKey:
    """A new key pair's private key (its public key is `.public`)."""
    return OperatorKey(key_id, secrets.token_bytes(ed25519.SEED_BYTES))


def write_key_file(path: Path, key: OperatorKey) -> None:
    """Write the private key to `path`, readable by its owner only, never over an existing file."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(f"# creditwindow operator key {key.key_id}: private; never give it to the fleet or anyone else\n{key.text()}\n")


def ring_entry(key: OperatorKey, retire_at: datetime) -> str:
    """The key's entry in CW_OPERATOR_PUBLIC_KEYS, as JSON: `"<id>": {"public_key": ..., "retire_at": ...}`."""
    entry = {"public_key": encode_key(key.public), "retire_at": retire_at.isoformat()}
    return f"{json.dumps(key.key_id)}: {json.dumps(entry)}"


def signed_retirement(
    settings: Settings, *, retired_key_id: str, retire_at: datetime | None = None, issued_by: str, issued_at: datetime | None = None
) -> KeyRetired:
    """A retirement of `retired_key_id` (at `retire_at`, default when issued) signed with this operator's key."""
    key = signing_key(settings)
    now = issued_at or settings.clock().now()
    unsigned = KeyRetired(
        correlation_id=f"key-{retired_key_id}",
        producer="creditwindow-cli",
        issued_by=issued_by,
        issued_at=now,
        key_id=key.key_id,
        namespace=settings.topic_namespace,
        signature="0" * 128,
        retired_key_id=retired_key_id,
        retire_at=retire_at or now,
    )
    signature = key.sign(action_bytes(KeyRetired.EVENT_TYPE, unsigned.signed_fields(settings.topic_namespace)))
    return unsigned.model_copy(update={"signature": signature})


async def publish_retirement(retirement: KeyRetired, settings: Settings) -> int:
    """Publish a signed retirement where the fleet reads it, in order with the policy updates
    (`credit.policy`, services/policy/control/updates.py), and wait for the broker; returns its offset."""
    async with Publisher(settings) as publisher:
        metadata = await (await publisher.send(settings.topics.policy, retirement))
    return int(metadata.offset)
