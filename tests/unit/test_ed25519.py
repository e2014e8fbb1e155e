"""Ed25519 as RFC 8032 defines it: the RFC's own test vectors (section 7.1), and what verification refuses."""

from __future__ import annotations

import pytest

from shared import ed25519

# (private key, message, public key, signature), hex, from RFC 8032 section 7.1: TEST 1, 2, 3 and SHA(abc).
RFC_8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "72",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "af82",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
]


@pytest.mark.parametrize(("seed", "message", "public", "signature"), RFC_8032, ids=["test1", "test2", "test3", "sha_abc"])
def test_keys_and_signatures_are_the_rfcs(seed: str, message: str, public: str, signature: str) -> None:
    assert ed25519.public_key(bytes.fromhex(seed)).hex() == public
    assert ed25519.sign(bytes.fromhex(seed), bytes.fromhex(message)).hex() == signature
    assert ed25519.verify(bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature))


def test_a_signature_verifies_for_its_message_and_key_only() -> None:
    seed, message, public, signature = (bytes.fromhex(part) for part in RFC_8032[2])
    other_public = bytes.fromhex(RFC_8032[1][2])
    assert not ed25519.verify(public, message + b"!", signature)
    assert not ed25519.verify(other_public, message, signature)
    flipped = bytearray(signature)
    flipped[5] ^= 1
    assert not ed25519.verify(public, message, bytes(flipped))


def test_malformed_keys_and_signatures_are_refused_not_raised() -> None:
    _, message, public, signature = (bytes.fromhex(part) for part in RFC_8032[0])
    assert not ed25519.verify(public[:31], message, signature)
    assert not ed25519.verify(public, message, signature[:63])
    assert not ed25519.verify(b"\xff" * 32, message, signature)  # not a point on the curve
    too_big_s = signature[:32] + (2**253).to_bytes(32, "little")
    assert not ed25519.verify(public, message, too_big_s)
    with pytest.raises(ValueError, match="32 bytes"):
        ed25519.sign(b"short", message)
