"""Secrets as they may be shown: a URL's password and any known secret value replaced by `***`. Pure.

Used wherever a DSN or a setting is printed or logged: the CLI's messages, `dev status`, the local
platform, and the log processor (shared/logging.py), which masks a password in any URL it meets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MASK", "mask_secrets", "mask_url"]

MASK = "***"

# scheme://user:password@host  and  ...?password=...  (redis-py reads both forms)
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<password>[^@\s/]+)@")
_QUERY = re.compile(r"(?P<head>[?&](?:password|passwd|pass|pwd|token|secret)=)[^&\s#]+", re.IGNORECASE)


def mask_url(text: str) -> str:
    """`redis://:s3cret@host:6379/0` -> `redis://:***@host:6379/0` (anywhere in `text`)."""
    if "://" not in text:
        return text
    return _QUERY.sub(rf"\g<head>{MASK}", _USERINFO.sub(rf"\g<head>:{MASK}@", text))


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with URLs masked and every known secret value (4 characters or more) replaced."""
    text = mask_url(text)
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
