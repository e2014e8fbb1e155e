"""Decision references: the `CW-XXXX-XXXX-XXXX` a customer quotes, derived from the decision id. Pure.

Two services need them: notification prints them in every message, policy finds a decision by them
(explanations, reviews). The reference is the first 60 bits of the decision id in Crockford base32:
twelve characters without look-alikes (no I, L, O, U), so it survives being read out over the
phone; 60 bits keep references of different decisions apart in practice.
"""

from __future__ import annotations

import re
import uuid

__all__ = ["REFERENCE_PATTERN", "normalise_reference", "reference_of"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Crockford's decoding forgives the look-alikes a customer may type.
_LOOK_ALIKES = str.maketrans({"I": "1", "L": "1", "O": "0", "U": "V"})
REFERENCE_PATTERN = r"^CW-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$"
_TYPED = re.compile(r"^CW-?([0-9A-Z]{4})-?([0-9A-Z]{4})-?([0-9A-Z]{4})$")


# Two characters per 10 bits: a reference is six look-ups (every message and every decision makes one).
_PAIRS = tuple(_CROCKFORD[i >> 5] + _CROCKFORD[i & 31] for i in range(1024))


def reference_of(decision_id: uuid.UUID) -> str:
    """The reference of a decision id: `CW-` and 12 Crockford base32 characters in groups of four
    (the id's first 60 bits, five to a character, most significant first)."""
    top = decision_id.int >> 68
    p = _PAIRS
    return (
        f"CW-{p[(top >> 50) & 1023]}{p[(top >> 40) & 1023]}-{p[(top >> 30) & 1023]}{p[(top >> 20) & 1023]}"
        f"-{p[(top >> 10) & 1023]}{p[top & 1023]}"
    )


def normalise_reference(text: str) -> str | None:
    """A reference as customers and operators type it (any case, dashes or none, look-alikes, or the
    decision id itself) in its one written form; None when it is neither."""
    cleaned = text.strip()
    try:
        return reference_of(uuid.UUID(cleaned))
    except ValueError:
        pass
    match = _TYPED.match(cleaned.upper().replace(" ", "").translate(_LOOK_ALIKES))
    if match is None:
        return None
    return "CW-" + "-".join(match.groups())
