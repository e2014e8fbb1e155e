"""structlog, configured once per process: JSON lines (console on a terminal), ids bound, PII redacted."""

from __future__ import annotations

import logging
import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import orjson
import structlog

from shared.masking import MASK, mask_url

__all__ = ["configure_logging", "event_ids", "redact"]

# How personal numbers are found (`redact`). The text is first read the way a person reads it: each
# character in Unicode NFKC (full-width digits and separators become ASCII: １３８ -> 138, ． -> .),
# and a decimal digit of any script as its ASCII digit. Then a number is a run of digits, glued or
# with ONE kind of separator (a space, `-`, `.` or `_`) between any two of them, that does not touch
# more of a number or a word: 138 1234 5678, 138-1234-5678, 138.1234.5678 and 138_1234_5678 are one
# phone; `15.5 16.25 17.75` (two kinds) is a list of numbers, 12.13812345678 a decimal, and
# cus_0000000000000000 an id (`_` or `-` between it and a letter or digit makes one token). Where
# separators stand, no group between them is longer than 8 digits (0.30000000000000004 is a float,
# not a card). A phone may also follow `tel` (tel13812345678). The run must have a personal number's
# shape and length:
#   resident ID  17 digits and a check digit or X (18)
#   bank card    16 to 19 digits
#   mobile       1[3-9] and nine digits (11), optionally after +86, 0086, 86 or (+86)
# so amounts, counts, offsets, timestamps to the millisecond, dates and the fleet's ids survive.
_SEPARATORS = (" ", "-", ".", "_")
_ANY_SEPARATOR = "[ ._-]"
# Not glued to more of a number or a word on either side: a separator followed by a digit continues
# the number, and `-` or `_` followed by a letter or digit joins it into a longer token (an id such as
# cus_0000000000000000 or a UUID).
_BEFORE = r"(?<![0-9A-Za-z])(?<![0-9A-Za-z][_-])(?<![0-9][ .])"
_AFTER = r"(?![0-9A-Za-z])(?![_-][0-9A-Za-z])(?![ .][0-9])"
_AFTER_TEL = r"(?<=[Tt][Ee][Ll])|(?<=[Tt][Ee][Ll][_-])"


def _one_separator(template: str) -> str:
    """`template` (with `{s}` where a separator may stand) once per separator, as alternatives: the
    number's body (group `body`)."""
    return "(?P<body>" + "|".join(template.format(s=re.escape(separator)) for separator in _SEPARATORS) + ")"


# What personal data looks like in this domain. Ids are pseudonymous, so none of these should ever
# appear; if one does (a bug, a hostile payload echoed in an error) it is masked before writing.
# Order matters: the longer numbers first, so a card number is not half taken for a phone.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(_BEFORE + _one_separator("[0-9](?:{s}?[0-9]){{16}}{s}?[0-9Xx]") + _AFTER), "[id-card]"),
    (re.compile(_BEFORE + _one_separator("[0-9](?:{s}?[0-9]){{15,18}}") + _AFTER), "[card]"),
    (
        re.compile(
            rf"(?:{_BEFORE}(?<!\+)|{_AFTER_TEL})"
            rf"(?:(?:\+|00)?86{_ANY_SEPARATOR}?|\(\+?86\){_ANY_SEPARATOR}?)?"
            + _one_separator("1{s}?[3-9](?:{s}?[0-9]){{9}}")
            + _AFTER
        ),
        "[phone]",
    ),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[email]"),
)
_SENSITIVE_KEYS = frozenset(
    {
        "name", "full_name", "phone", "mobile", "id_card", "id_number", "email", "address", "password", "secret",
        "authorization", "token", "api_token", "signing_key", "key_value", "sasl_password",
    }
)  # fmt: skip


# Every pattern above needs an "@" or eleven digits (one separator at most between two), and a URL
# with a password a "://": one C-speed search on the text as read rules most strings out.
_SUSPECT = re.compile(r"@|://|[0-9](?:[ ._-]?[0-9]){10}")
_SEPARATED = re.compile(r"[0-9][ ._-][0-9]")
_DIGIT_GROUP = re.compile(r"[0-9]+")
MAX_GROUP = 8  # the longest group of digits people write between separators (a date of birth)
# The secrets of this process's settings (keys, tokens, passwords): never written, wherever they hide.
_secrets: tuple[str, ...] = ()


def _as_read(text: str) -> tuple[str, list[int] | None]:
    """`text` as a person reads it (NFKC, any script's digits as 0-9), and where each of its characters
    came from in `text` (None: unchanged)."""
    if text.isascii():
        return text, None
    read: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if char.isascii():
            read.append(char)
            origin.append(index)
            continue
        digit = unicodedata.decimal(char, None)
        form = str(digit) if digit is not None else unicodedata.normalize("NFKC", char)
        read.append(form)
        origin.extend([index] * len(form))
    return "".join(read), origin


def _mask_personal_numbers(text: str) -> str:
    """`text` with every match of `_PATTERNS` in its read form replaced by its mask; the rest as written."""
    read, origin = _as_read(text)
    if not _SUSPECT.search(read):
        return text
    spans: list[tuple[int, int, str]] = []

    def taken(match: re.Match[str], mask: str) -> str:
        found = match.group()
        body = match.group("body") if "body" in match.re.groupindex else ""
        if _SEPARATED.search(body) and max(map(len, _DIGIT_GROUP.findall(body))) > MAX_GROUP:
            return found  # a decimal's long fraction or integer part, not a number written in groups
        spans.append((match.start(), match.end(), mask))
        return "\x00" * len(found)  # out of the way of the next patterns, as its mask would be; same length

    for pattern, mask in _PATTERNS:
        read = pattern.sub(lambda match: taken(match, mask), read)
    if not spans:
        return text
    out, position = [], 0
    for start, end, mask in sorted(spans):
        first, last = (start, end) if origin is None else (origin[start], origin[end - 1] + 1)
        out += [text[position:first], mask]
        position = last
    out.append(text[position:])
    return "".join(out)


def event_ids(event: Any) -> dict[str, str]:
    """The ids every log line about an event binds: its id, its correlation id, its customer (if any)."""
    ids = {"event_id": str(event.event_id), "correlation_id": event.correlation_id}
    customer = getattr(event, "customer_id", None)
    if customer:
        ids["customer_id"] = customer
    return ids


def redact(value: Any) -> Any:
    """Mask anything that looks like personal data or a secret, recursively through dicts and lists."""
    if isinstance(value, str):
        for secret in _secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return _mask_personal_numbers(mask_url(value) if "://" in value else value)
    if isinstance(value, Mapping):
        return {k: ("[redacted]" if str(k).lower() in _SENSITIVE_KEYS else redact(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    return value


def _redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if key.lower() in _SENSITIVE_KEYS:
            event_dict[key] = "[redacted]"
        elif isinstance(value, (str, Mapping, list, tuple)):
            event_dict[key] = redact(value)
    return event_dict


class _LineWriter(structlog.BytesLogger):
    """Writes rendered JSON lines straight to stderr; keeps the logger's name for `add_logger_name`."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(sys.stderr.buffer)
        self.name = name or "creditwindow"


def configure_logging(
    *, service: str, level: str = "INFO", fmt: str = "auto", instance: str = "", secrets: Iterable[str] = ()
) -> None:
    """Configure structlog and the standard library (FastStream, aiokafka) to write through it.

    JSON lines: the fleet's own log calls render with orjson and write straight to stderr (no
    stdlib logging on the hot path); foreign libraries' records go through the same processors.
    On a terminal everything renders for humans. `secrets` (the settings' keys, tokens and
    passwords) are masked wherever they appear, as is a password in any URL.
    """
    global _secrets
    _secrets = tuple(sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True))
    console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redact_processor,
    ]
    renderer: Any = structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    if console:
        structlog.configure(
            processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
            cache_logger_on_first_use=True,
        )
    else:
        structlog.configure(
            processors=[*shared, structlog.processors.JSONRenderer(serializer=orjson.dumps)],
            logger_factory=_LineWriter,
            wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
            cache_logger_on_first_use=True,
        )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared, processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer]
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The Kafka client is chatty at INFO about every rebalance and coordinator hop.
    quiet = max(logging.WARNING, logging.getLevelName(level))
    logging.getLogger("aiokafka").setLevel(quiet)
    # FastStream logs every message received and processed at INFO: far too much for a fleet.
    logging.getLogger(f"creditwindow.{service}.faststream").setLevel(quiet)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service, **({"instance": instance} if instance else {}))
