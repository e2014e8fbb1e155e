"""`DeadLetter`: an input a service could not take, kept with its reason (topic `credit.deadletter`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.contracts.envelope import Event

__all__ = ["DeadLetter"]


class DeadLetter(Event):
    """The original bytes and headers of a refused record, where it came from, and why."""

    EVENT_TYPE: ClassVar[str] = "DeadLetter"

    error: str = Field(max_length=2000, description="Why it was refused (validation errors, decode error).")
    error_type: str = Field(max_length=64, examples=["undecodable", "invalid", "too_large", "forged_policy"])
    failed_by: str = Field(max_length=64, description="The service that refused it.", examples=["scoring"])
    source_topic: str = Field(max_length=249)
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=-1)
    source_key: str | None = Field(default=None, max_length=256, description="Original key (UTF-8, replaced on error).")
    payload_b64: str = Field(description="Original value, base64 (truncated past the size limit).")
    payload_truncated: bool = Field(default=False, description="Only the first part of the value is kept.")
    payload_omitted: bool = Field(
        default=False, description="The value is not kept at all: the letter would have exceeded the broker's limit."
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Original headers (UTF-8, replaced on error).")
    replayed_from: str | None = Field(default=None, max_length=80, description="Set when a replay failed again.")
