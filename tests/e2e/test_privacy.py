"""No personal data in any event or log line.

This test plants personal data in its fleet's inputs and scans that fleet's topics and logs. Every
other fleet of the session is scanned too, whatever order the tests run in: `tests/e2e/conftest.py`
checks every service log of the session when the session ends (`personal_data_in_logs`).
"""

from __future__ import annotations

import json
from pathlib import Path

from devtools.germancredit import applications
from shared.contracts import DeadLetter, NotificationSent, WindowClosed, WindowOpened
from shared.wire import encode
from tests.e2e.conftest import (
    EMAIL,
    ID_CARD,
    ID_CARD_SPACED,
    NAME,
    PHONE,
    PHONE_FORMATTED,
    RunningFleet,
    personal_data_in_logs,
)


async def test_planted_personal_data_reaches_no_event_and_no_log_line(fleet: RunningFleet, log_root: Path) -> None:
    topics = fleet.settings.topics
    good, phone_as_id = list(applications("pii", count=2))
    body = json.loads(encode(good).value)
    body["applicant"].update({"name": NAME, "phone": PHONE, "id_card": ID_CARD, "email": EMAIL})  # ignored extras
    await fleet.publish_raw(topics.applications, json.dumps(body).encode(), key=good.customer_id.encode())
    invalid = json.loads(encode(phone_as_id).value)
    invalid["customer_id"] = PHONE  # an id that is really a phone number is refused
    await fleet.publish_raw(topics.applications, json.dumps(invalid).encode(), key=PHONE.encode())
    await fleet.publish_raw(topics.applications, f"name={NAME};phone={PHONE};mail={EMAIL}".encode(), key=b"cus_pii_bytes_01")
    # Written as people write them: spaced, dashed, with +86, in the text a service echoes in its error.
    await fleet.publish_raw(
        topics.applications, f'{{"note": "call {PHONE_FORMATTED} or 139-1234-5678, id {ID_CARD_SPACED}"'.encode(), key=b"cus_pii_bytes_02"
    )

    def done(seen: list) -> bool:  # type: ignore[type-arg]
        decided = {r.event.application_id for r in seen if isinstance(r.event, (WindowOpened, WindowClosed))}
        told = [r for r in seen if isinstance(r.event, NotificationSent)]
        letters = [r for r in seen if isinstance(r.event, DeadLetter)]
        return good.application_id in decided and len(told) >= 2 and len(letters) >= 3

    seen = await fleet.read([topics.scores, topics.windows, topics.notifications, topics.deadletter], done, timeout_s=60, settle_s=1)
    for item in seen:
        if item.record.topic == topics.deadletter:
            continue  # operators' topic: it keeps the original bytes (base64) for replay, by design
        text = (item.record.value or b"").decode("utf-8", "replace")
        for secret in (PHONE, PHONE_FORMATTED, "139-1234-5678", ID_CARD, ID_CARD_SPACED, EMAIL, NAME):
            assert secret not in text, f"{secret} in {item.record.topic}@{item.record.offset}"

    own_logs = log_root / fleet.settings.topic_namespace
    assert any(own_logs.rglob("*.log")), "the scan saw no logs"
    hits = personal_data_in_logs(own_logs)
    assert not hits, "\n".join(hits[:20])
