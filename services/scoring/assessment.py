"""Turning an application into a `ScoreComputed`: pure, no I/O.

An application that cannot be scored still gets an outcome: `unscorable`, which the policy service
turns into a `system` closure ("not your credit"), so nothing is silent.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime

from services.scoring.ports import Scorer
from shared.contracts import ApplicationFacts, ApplicationReceived, ScoreComputed, deterministic_id
from shared.wire import MAX_EVENT_BYTES, RefusedRecord

__all__ = ["assess", "unreadable"]

PRODUCER = "scoring"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{5,63}$")
_APP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{5,79}$")


def assess(application: ApplicationReceived, scorer: Scorer | None, now: datetime) -> ScoreComputed:
    """Score one application at `now`. The output's id is derived from the input's, so a redelivery is a duplicate."""
    envelope = {
        "key": (PRODUCER, application.event_id),
        "producer": PRODUCER,
        "occurred_at": now,
        "correlation_id": application.application_id,
        "application_id": application.application_id,
        "customer_id": application.customer_id,
        "facts": application.facts,
    }
    if scorer is None:
        return ScoreComputed.caused_by(application, **envelope, outcome="unscorable", failure="model_unavailable")  # type: ignore[arg-type]
    try:
        result = scorer.score(application.applicant, application.facts.segment)
    except (ValueError, KeyError, ArithmeticError) as exc:
        return ScoreComputed.caused_by(
            application, **envelope, outcome="unscorable", failure=f"scoring_error: {type(exc).__name__}", model_id=scorer.model_id  # type: ignore[arg-type]
        )
    return ScoreComputed.caused_by(
        application,
        **envelope,  # type: ignore[arg-type]
        outcome="scored",
        model_id=scorer.model_id,
        points=result.points,
        pd=result.pd,
        grade=result.grade,
        reasons=result.reasons[:4],
        recourse=result.recourse,
        recourse_target_points=result.recourse_target_points,
    )


def unreadable(refused: RefusedRecord, now: datetime) -> ScoreComputed | None:
    """The outcome of an application that did not decode but names a customer (body or Kafka key).

    None when no customer can be named: then the dead letter is the only trace.
    """
    record = refused.record
    body: dict[str, object] = {}
    if record.value and len(record.value) <= MAX_EVENT_BYTES and refused.error_type not in ("too_deep",):
        try:
            parsed = json.loads(record.value)
            body = parsed if isinstance(parsed, dict) else {}
        except (ValueError, UnicodeDecodeError, RecursionError):
            body = {}
    customer = body.get("customer_id")
    if not (isinstance(customer, str) and _ID.match(customer)):
        key = record.key.decode("utf-8", "replace") if record.key else ""
        customer = key if _ID.match(key) else None
    if customer is None:
        return None
    application_id = body.get("application_id")
    if not (isinstance(application_id, str) and _APP_ID.match(application_id)):
        topic_tag = hashlib.sha256(record.topic.encode()).hexdigest()[:8]
        application_id = f"unread_{topic_tag}_{record.partition}_{record.offset}"
    try:
        facts = ApplicationFacts.model_validate(body.get("facts"))
    except ValueError:
        facts = None  # the customer still hears back, in the default language
    try:
        return ScoreComputed(
            event_id=deterministic_id(PRODUCER, "unreadable", record.topic, record.partition, record.offset),
            correlation_id=application_id,
            producer=PRODUCER,
            occurred_at=now,
            application_id=application_id,
            customer_id=customer,
            facts=facts,
            outcome="unscorable",
            failure=f"application_invalid: {refused.error_type}",
        )
    except ValueError:
        # The salvaged ids themselves fail the contract (e.g. an id that is a phone number).
        return None
