"""The policy handler in shadow mode: decisions to the shadow topic only, budgets in memory."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from services.policy.deciding import Decider, PolicyState
from services.policy.handlers import PolicyDeps, build_router
from services.policy.metrics import PolicyMetrics
from services.policy.shadow import LiveReservation, ShadowLimits, ShadowOutbox
from shared.contracts import WindowClosed, WindowOpened
from shared.settings import Settings
from shared.wire import encode
from tests.handlers.capture import capture
from tests.unit.policy.factories import default_policy, score

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class RecordingLiveBook:
    """The live store as the shadow sees it: reads only, counted."""

    def __init__(self, *, exposure: float = 0.0, windows: dict[str, LiveReservation] | None = None) -> None:
        self.exposure = exposure
        self.windows = windows or {}
        self.reads: list[str] = []

    async def budgets(self) -> dict[str, dict[str, float]]:
        self.reads.append("budgets")
        return {"individual": {"exposure": self.exposure, "expected_loss": 0.0}}

    async def programmes(self, names: Sequence[str] = ()) -> dict[str, int]:
        self.reads.append("programmes")
        return {}

    async def open_window(self, customer_id: str) -> LiveReservation | None:
        self.reads.append(f"window:{customer_id}")
        return self.windows.get(customer_id)


def _wire(live: RecordingLiveBook, **policy_changes: object) -> tuple[KafkaBroker, ShadowLimits, Settings]:
    settings = Settings(topic_namespace="h", shadow=True)
    broker = KafkaBroker()
    store = ShadowLimits(live)  # type: ignore[arg-type]
    outbox = ShadowOutbox(broker, service="policy-shadow")
    state = PolicyState(default_policy(**policy_changes), source="test")
    decider = Decider(store=store, outbox=outbox, topics=settings.topics, state=state, shadow=True, clock=lambda: NOW)
    broker.include_router(build_router(PolicyDeps(settings, outbox, PolicyMetrics(CollectorRegistry()), decider, state)))
    return broker, store, settings


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
    assert store.budgets["individual"].reserved_exposure == 30_000_000
    assert live.reads.count("budgets") == 1


async def test_a_customer_applying_again_frees_their_live_window_in_the_shadow_book_once() -> None:
    held = LiveReservation("individual", 40_000, 720.0, "", 0)
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
    assert store.budgets["individual"].reserved_exposure == 30_000_000 - 1_000 - 40_000 + 10_000


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
