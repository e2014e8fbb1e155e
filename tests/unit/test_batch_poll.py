"""The fix to FastStream's batch poll (shared/messaging/batch_poll.py): why it exists, and that it still must.

Pinned to the FastStream version it was written for. When FastStream changes, the first test fails:
read the new `BatchSubscriber.get_msg`, and drop the fix if it no longer sleeps after an empty poll.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version
from typing import Any

import anyio
import pytest
from faststream.kafka.subscriber.usecase import BatchSubscriber

from shared.messaging import make_broker
from shared.messaging.batch_poll import PATCHED_FASTSTREAM, original_poll
from shared.settings import Settings


class EmptyConsumer:
    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        return {}


def test_the_fix_is_for_this_faststream_whose_batch_poll_sleeps_after_an_empty_poll() -> None:
    installed = version("faststream")
    assert installed.startswith(PATCHED_FASTSTREAM), (
        f"FastStream {installed}: check whether BatchSubscriber.get_msg still sleeps after an "
        "empty poll, then renew or drop shared/messaging/batch_poll.py"
    )
    assert "sleep" in inspect.getsource(original_poll())


async def test_a_broker_made_by_the_fleet_polls_without_the_extra_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    make_broker(Settings(), service="test")  # applies the fix, explicitly

    async def no_sleep(_: float) -> None:
        raise AssertionError("slept after an empty poll")

    monkeypatch.setattr(anyio, "sleep", no_sleep)
    subscriber = BatchSubscriber.__new__(BatchSubscriber)
    subscriber.batch_timeout_ms, subscriber.max_records = 100, 10
    assert await BatchSubscriber.get_msg(subscriber, EmptyConsumer()) == ()  # type: ignore[arg-type]
