"""structlog, configured once per process: JSON lines (console on a terminal), ids bound, PII redacted."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import orjson
import structlog

from shared.masking import MASK, mask_url

__all__ = ["configure_logging", "event_ids", "redact"]

# Digits of a number as people write it: single spaces or dashes between any two.
_SEP = r"[ -]?"
# Not glued to more of a number or a word on either side (a separator followed by a digit counts).
_BEFORE = r"(?<![0-9A-Za-z])(?<![0-9][ -])"
_AFTER = r"(?![0-9A-Za-z])(?![ -][0-9])"

# What personal data looks like in this domain. Ids are pseudonymous, so none of these should ever
# appear; if one does (a bug, a hostile payload echoed in an error) it is masked before writing.
# Order matters: the longer numbers first, so a card number is not half taken for a phone.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # resident ID: 17 digits and a check digit or X, also spaced (110105 19491231 002X)
    (re.compile(rf"{_BEFORE}\d(?:{_SEP}\d){{16}}{_SEP}[\dXx]{_AFTER}"), "[id-card]"),
    # bank card: 16 to 19 digits, also in groups
    (re.compile(rf"{_BEFORE}\d(?:{_SEP}\d){{15,18}}{_AFTER}"), "[card]"),
    # mainland mobile: 1[3-9] and nine digits, with or without +86 / 0086 / (+86), spaced or dashed
    (re.compile(rf"(?<![0-9A-Za-z+])(?:(?:\+|00)?86{_SEP}|\(\+?86\){_SEP})?1[3-9](?:{_SEP}\d){{9}}{_AFTER}"), "[phone]"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[email]"),
)
_SENSITIVE_KEYS = frozenset(
    {
        "name", "full_name", "phone", "mobile", "id_card", "id_number", "email", "address", "password", "secret",
        "authorization", "token", "api_token", "signing_key", "key_value", "sasl_password",
    }
)  # fmt: skip


# Every pattern above needs an "@" or eleven digits (single separators allowed), and a URL with a
# password a "://": one C-speed search rules most strings out before the patterns run.
_SUSPECT = re.compile(r"@|://|\d(?:[ -]?\d){10}")
# The secrets of this process's settings (keys, tokens, passwords): never written, wherever they hide.
_secrets: tuple[str, ...] = ()


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
        if not _SUSPECT.search(value):
            return value
        value = mask_url(value)
        for pattern, mask in _PATTERNS:
            value = pattern.sub(mask, value)
        return value
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
