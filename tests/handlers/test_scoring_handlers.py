"""The scoring service, built by its own composition root, on the in-memory broker."""

from __future__ import annotations

import json

from faststream.kafka import KafkaBroker, TestKafkaBroker
from prometheus_client import CollectorRegistry

from devtools.germancredit import applications
from services.scoring.app import compose
from services.scoring.ports import ScoreResult
from services.scoring.scorecard import Scorecard
from shared.contracts import Applicant, DeadLetter, ScoreComputed
from shared.messaging import Outbox
from shared.settings import Settings
from shared.wire import encode
from tests.clocks import NOW, clock_at
from tests.handlers.capture import Captured, capture


class BrokenScorer:
    """A scorer whose model fails on every applicant."""

    model_id = "broken@1"

    def score(self, applicant: Applicant, segment: str) -> ScoreResult:
        raise ValueError("the model cannot score this")


def _wire(scorer: object | None = None) -> tuple[KafkaBroker, Settings, Captured, CollectorRegistry]:
    settings = Settings(topic_namespace="h")
    broker = KafkaBroker()
    registry = CollectorRegistry()
    compose(
        settings, broker=broker, scorecard=Scorecard.load(settings.model_path), scorer=scorer,  # type: ignore[arg-type]
        publisher=Outbox(broker, service="scoring", registry=registry, clock=clock_at(NOW)), registry=registry, clock=clock_at(NOW),
    )  # fmt: skip
    return broker, settings, capture(broker, settings.topics.scores, settings.topics.deadletter), registry


async def _send(broker: KafkaBroker, topic: str, value: bytes, key: bytes, headers: dict[str, str] | None = None) -> None:
    await broker.publish(value, topic, key=key, headers=headers or {})


async def test_an_application_is_scored_with_points_grade_reasons_and_the_model_id() -> None:
    broker, settings, out, _ = _wire()
    (application,) = applications("hscore", count=1)
    async with TestKafkaBroker(broker):
        message = encode(application)
        await _send(broker, settings.topics.applications, message.value, message.key, message.headers)
    (score,) = out.of(ScoreComputed)
    assert (score.application_id, score.customer_id, score.outcome) == (application.application_id, application.customer_id, "scored")
    assert score.points is not None and score.grade and score.model_id and score.model_id.startswith("german-woe@")
    assert score.causation_id == application.event_id and len(score.reasons) <= 4


async def test_a_redelivered_application_gives_the_same_score_event() -> None:
    broker, settings, out, _ = _wire()
    (application,) = applications("hdup", count=1)
    async with TestKafkaBroker(broker):
        message = encode(application)
        for _ in range(2):
            await _send(broker, settings.topics.applications, message.value, message.key, message.headers)
    first, second = out.of(ScoreComputed)
    assert first.event_id == second.event_id  # consumers dedupe on it: one decision follows


async def test_garbage_naming_a_customer_is_dead_lettered_and_still_gets_an_outcome() -> None:
    broker, settings, out, registry = _wire()
    async with TestKafkaBroker(broker):
        await _send(broker, settings.topics.applications, b"\x00not json", key=b"cus_garbage_0001")
    (letter,) = out.of(DeadLetter)
    assert (letter.source_topic, letter.error_type, letter.source_key) == (settings.topics.applications, "undecodable", "cus_garbage_0001")
    (score,) = out.of(ScoreComputed)
    assert (score.customer_id, score.outcome) == ("cus_garbage_0001", "unscorable")
    assert (score.failure or "").startswith("application_invalid")
    labels = {"source": settings.topics.applications, "error_type": "undecodable"}
    assert registry.get_sample_value("creditwindow_dead_letters_total", labels) == 1


async def test_an_invalid_application_is_refused_with_the_field_and_the_next_one_is_scored() -> None:
    broker, settings, out, _ = _wire()
    bad, good = applications("hinvalid", count=2)
    body = json.loads(encode(bad).value)
    body["facts"]["annual_income"] = -5
    async with TestKafkaBroker(broker):
        await _send(broker, settings.topics.applications, json.dumps(body).encode(), bad.customer_id.encode(), {"event_type": "ApplicationReceived"})
        message = encode(good)
        await _send(broker, settings.topics.applications, message.value, message.key, message.headers)
    (letter,) = out.of(DeadLetter)
    assert letter.error_type == "invalid" and "annual_income" in letter.error
    outcomes = {s.application_id: s.outcome for s in out.of(ScoreComputed)}
    assert outcomes == {bad.application_id: "unscorable", good.application_id: "scored"}


async def test_a_model_that_fails_gives_an_unscorable_outcome_not_silence() -> None:
    broker, settings, out, _ = _wire(scorer=BrokenScorer())
    (application,) = applications("hbroken", count=1)
    async with TestKafkaBroker(broker):
        message = encode(application)
        await _send(broker, settings.topics.applications, message.value, message.key, message.headers)
    (score,) = out.of(ScoreComputed)
    assert (score.outcome, score.model_id) == ("unscorable", "broken@1")
    assert score.failure == "scoring_error: ValueError"
    assert out.of(DeadLetter) == []
