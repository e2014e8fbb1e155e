"""The committed AsyncAPI documents describe every topic and message the services' code has.

Each service's app is built in this process (nothing connects); its subscribers and publishers are
read off the broker, and each must appear in `docs/asyncapi/<service>.asyncapi.json` as an
operation on its topic with its events' payload schemas, equal to the contracts' schemas now.
Regenerate with `creditwindow asyncapi export`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from creditwindow.commands.asyncapi import DOCS_DIR, SERVICES, build_app, document
from shared.asyncapi import events_in_title
from shared.contracts import EVENT_TYPES

REGENERATE = "run `creditwindow asyncapi export` and commit docs/asyncapi"


def _endpoints(service: str) -> set[tuple[str, str, str]]:
    """(action, topic, event type) of every subscriber and publisher of the service's code."""
    broker = build_app(service).broker
    assert broker is not None
    found = set()
    for subscriber in broker.subscribers:
        spec = subscriber.specification
        for topic in spec.topics:  # type: ignore[attr-defined]
            found |= {("receive", topic, model.EVENT_TYPE) for model in events_in_title(spec.config.title_)}
    for publisher in broker.publishers:
        found.add(("send", publisher.specification.topic, publisher.specification.config.schema_.EVENT_TYPE))  # type: ignore[attr-defined]
    return found


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("%7C", "|")]
    return node


def _documented(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    found = set()
    for operation in doc["operations"].values():
        channel = _resolve(doc, operation["channel"]["$ref"])
        for message_ref in operation["messages"]:
            message = _resolve(doc, _resolve(doc, message_ref["$ref"])["$ref"])
            payload = message["payload"]
            for ref in [p["$ref"] for p in payload.get("oneOf", [payload])]:
                found.add((operation["action"], channel["address"], ref.rsplit("/", 1)[1]))
    return found


def _committed(service: str) -> dict[str, Any]:
    path = DOCS_DIR / f"{service}.asyncapi.json"
    assert path.exists(), f"{path} is missing: {REGENERATE}"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize("service", SERVICES)
def test_every_topic_and_message_of_the_code_is_documented(service: str) -> None:
    missing = _endpoints(service) - _documented(_committed(service))
    assert not missing, f"{service}: not in the committed document: {sorted(missing)}; {REGENERATE}"


@pytest.mark.parametrize("service", SERVICES)
def test_the_documented_payload_schemas_are_the_contracts_of_today(service: str) -> None:
    committed, generated = _committed(service)["components"]["schemas"], document(service)["components"]["schemas"]
    events = {event for _, _, event in _endpoints(service)}
    stale = sorted(name for name in events if committed.get(name) != generated[name])
    assert not stale, f"{service}: payload schemas out of date: {stale}; {REGENERATE}"


def test_the_documents_name_every_event_a_subscriber_reads_not_raw_records() -> None:
    policy = _committed("policy")
    assert ("receive", "credit.scores", "ScoreComputed") in _documented(policy)
    assert ("receive", "credit.policy", "PolicyUpdated") in _documented(policy)
    assert _documented(_committed("notification")) >= {("receive", "credit.windows", "WindowOpened"), ("receive", "credit.windows", "WindowClosed")}


def test_the_shadow_policy_decides_to_the_shadow_topic_and_follows_no_policy_updates() -> None:
    documented = _documented(_committed("policy-shadow"))
    assert {topic for action, topic, _ in documented if action == "send"} == {"credit.windows.shadow"}
    assert {topic for action, topic, _ in documented if action == "receive"} == {"credit.scores"}


def test_a_subscriber_title_must_name_known_events() -> None:
    assert events_in_title("credit.windows:WindowOpened|WindowClosed") == [EVENT_TYPES["WindowOpened"], EVENT_TYPES["WindowClosed"]]
    with pytest.raises(ValueError, match="unknown event types"):
        events_in_title("credit.windows:WindowShut")
    with pytest.raises(ValueError, match="does not name its events"):
        events_in_title(None)
