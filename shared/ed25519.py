"""Ed25519 (RFC 8032, section 5.1): key pairs, signatures and their verification, by `cryptography`
(OpenSSL), behind the four names the rest of the code uses. Held to the RFC's test vectors
(tests/unit/test_ed25519.py).

Ed25519 is deterministic: the same seed makes the same public key and the same message the same
signature, so these bodies replaced the RFC's reference implementation that stood here before
`cryptography` was locked without changing a key, a signature or a test. Unlike that one, signing
is constant-time.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = ["PUBLIC_KEY_BYTES", "SEED_BYTES", "SIGNATURE_BYTES", "public_key", "sign", "verify"]

SEED_BYTES = 32  # a private key: 32 random bytes
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


def _private(seed: bytes) -> Ed25519PrivateKey:
    if len(seed) != SEED_BYTES:
        raise ValueError(f"an Ed25519 private key is {SEED_BYTES} bytes, not {len(seed)}")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key(seed: bytes) -> bytes:
    """The 32-byte public key of a 32-byte private key (seed)."""
    return _private(seed).public_key().public_bytes_raw()


def sign(seed: bytes, message: bytes) -> bytes:
    """The 64-byte signature of `message` by the private key `seed`."""
    return _private(seed).sign(message)


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` is the signature of `message` by the key whose public key is `public`."""
    if len(public) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
