"""A shadow policy replica, built by its own composition root: decisions to the shadow topic only, budgets in memory."""

from __future__ import annotations

from collections.abc import Sequence

from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from services.policy.shadow_app import compose_shadow
from services.policy.windows.adapters.memory_book import MemoryBook
from services.policy.windows.model import DecisionRecord, Reserved
from shared.contracts import WindowClosed, WindowOpened
from shared.messaging import Outbox
from shared.settings import Settings
from shared.wire import encode
from tests.clocks import NOW, clock_at
from tests.handlers.capture import capture
from tests.unit.policy.factories import default_policy, score, this_period


class RecordingLiveBook:
    """The live store as the shadow sees it: reads only, counted."""

    def __init__(self, *, exposure: int = 0, windows: dict[str, DecisionRecord] | None = None) -> None:
        self.exposure = exposure
        self.windows = windows or {}
        self.reads: list[str] = []

    async def budgets(self, keys: Sequence[str]) -> dict[str, Reserved]:
        self.reads.append("budgets")
        return {key: Reserved(self.exposure, 0) for key in keys if key.startswith("individual")}

    async def programmes(self, names: Sequence[str] = ()) -> dict[str, int]:
        self.reads.append("programmes")
        return {}

    async def open_window(self, customer_id: str) -> DecisionRecord | None:
        self.reads.append(f"window:{customer_id}")
        return self.windows.get(customer_id)


def _wire(live: RecordingLiveBook, **policy_changes: object) -> tuple[KafkaBroker, MemoryBook, Settings]:
    settings = Settings(topic_namespace="h")
    broker = KafkaBroker()
    shadow = compose_shadow(
        settings, candidate=default_policy(**policy_changes), broker=broker, live=live,
        publisher=Outbox(broker, service="policy-shadow", clock=clock_at(NOW)), registry=CollectorRegistry(), clock=clock_at(NOW),
    )  # fmt: skip
    assert isinstance(shadow.store, MemoryBook)
    return broker, shadow.store, settings


async def _send_score(broker: KafkaBroker, settings: Settings, **kwargs: object) -> None:
    message = encode(score(**kwargs))  # type: ignore[arg-type]
    await broker.publish(message.value, settings.topics.scores, key=message.key, headers=message.headers)


async def test_a_shadow_decision_goes_to_the_shadow_topic_only() -> None:
    broker, _, settings = _wire(RecordingLiveBook())
    out = capture(broker, settings.topics.shadow_windows, settings.topics.windows, settings.topics.deadletter)
    async with TestKafkaBroker(broker):
        await _send_score(broker, settings)
    (opened,) = out.events
    assert isinstance(opened, WindowOpened)
    assert [e for e in out.events if e.event_type != "WindowOpened"] == []


async def test_the_shadow_dead_letters_nothing() -> None:
    broker, _, settings = _wire(RecordingLiveBook())
    out = capture(broker, settings.topics.shadow_windows, settings.topics.deadletter)
    async with TestKafkaBroker(broker):
        await broker.publish(b"\x00not json", settings.topics.scores, key=b"cus_unit00000001")
        await _send_score(broker, settings)
    assert [e.event_type for e in out.events] == ["WindowOpened"]


async def test_the_shadow_grants_under_the_live_reservations() -> None:
    live = RecordingLiveBook(exposure=30_000_000 - 5_000)  # 5,000 left of the individual budget
    broker, store, settings = _wire(live, pacing__enabled=False)
    out = capture(broker, settings.topics.shadow_windows)
    async with TestKafkaBroker(broker):
        await _send_score(broker, settings, income=120_000)
    (opened,) = out.of(WindowOpened)
    assert opened.limit == 5_000 and opened.basis.bound_by == "segment_budget"
    assert store.book.state.budgets[this_period(NOW)].exposure == 30_000_000
    assert live.reads.count("budgets") == 1


async def test_a_customer_applying_again_frees_their_live_window_in_the_shadow_book_once() -> None:
    held = DecisionRecord(
        seq=1, granted=40_000, status="open", customer="cus_again_000001", segment="individual", decision_id="d-live",
        application_id="app_live_000001", policy_version="default@1", el_fen=72_000, budget=this_period(NOW),
    )  # fmt: skip
    live = RecordingLiveBook(exposure=30_000_000 - 1_000, windows={"cus_again_000001": held})
    broker, store, settings = _wire(live, pacing__enabled=False)
    out = capture(broker, settings.topics.shadow_windows)
    async with TestKafkaBroker(broker):
        await _send_score(broker, settings, customer_id="cus_again_000001", application_id="app_again_000001", income=120_000)
        await _send_score(broker, settings, customer_id="cus_again_000001", application_id="app_again_000002", income=30_000)
    first, second = out.of(WindowOpened)
    assert first.limit == 1_000  # granted while the live window still counted
    assert second.limit == 10_000  # the live 40,000 was released once; the first shadow window too
    assert live.reads.count("window:cus_again_000001") == 1
    assert store.book.state.budgets[this_period(NOW)].exposure == 30_000_000 - 1_000 - 40_000 + 10_000


async def test_a_redelivered_score_gives_one_shadow_decision() -> None:
    broker, _, settings = _wire(RecordingLiveBook())
    out = capture(broker, settings.topics.shadow_windows)
    async with TestKafkaBroker(broker):
        for _ in range(3):
            await _send_score(broker, settings)
    assert len(out.events) == 1


async def test_a_closed_shadow_window_names_its_category() -> None:
    broker, store, settings = _wire(RecordingLiveBook())
    out = capture(broker, settings.topics.shadow_windows)
    async with TestKafkaBroker(broker):
        await _send_score(broker, settings, points=400)
    (closed,) = out.of(WindowClosed)
    assert (closed.category, closed.reason) == ("credit", "score_below_cutoff")
    window = await store.current("cus_unit00000001")
    assert window is not None and (window.status, window.category) == ("closed", "credit")


def test_the_shadow_does_not_follow_policy_updates() -> None:
    broker, _, settings = _wire(RecordingLiveBook())
    topics = {topic for sub in broker.subscribers for topic in sub.specification.topics}  # type: ignore[attr-defined]
    assert topics == {settings.topics.scores}
