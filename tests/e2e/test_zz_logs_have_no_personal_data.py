"""No personal data in any event or log line of the end-to-end run.

Named to run last among the end-to-end tests: it plants personal data in inputs, then scans every
service log written during this test session (all fleets) and the topics of its own fleet.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.contracts import DeadLetter, NotificationSent, WindowClosed, WindowOpened
from shared.germancredit import applications
from shared.wire import encode
from tests.e2e.conftest import RunningFleet

PHONE = "13812345678"
ID_CARD = "11010519491231002X"
EMAIL = "zhang.san@example.com"
NAME = "张三丰"
PATTERNS = (
    re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])"),
    re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])"),
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
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

    def done(seen: list) -> bool:  # type: ignore[type-arg]
        decided = {r.event.application_id for r in seen if isinstance(r.event, (WindowOpened, WindowClosed))}
        told = [r for r in seen if isinstance(r.event, NotificationSent)]
        letters = [r for r in seen if isinstance(r.event, DeadLetter)]
        return good.application_id in decided and len(told) >= 2 and len(letters) >= 2

    seen = await fleet.read([topics.scores, topics.windows, topics.notifications, topics.deadletter], done, timeout_s=60, settle_s=1)
    for item in seen:
        if item.record.topic == topics.deadletter:
            continue  # operators' topic: it keeps the original bytes (base64) for replay, by design
        text = (item.record.value or b"").decode("utf-8", "replace")
        for secret in (PHONE, ID_CARD, EMAIL, NAME):
            assert secret not in text, f"{secret} in {item.record.topic}@{item.record.offset}"

    hits = []
    for path in sorted(log_root.rglob("*.log")):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            if NAME in line or any(p.search(line) for p in PATTERNS):
                hits.append(f"{path.relative_to(log_root)}:{number}: {line[:200]}")
    assert not hits, "\n".join(hits[:20])
    assert any(log_root.rglob("*.log")), "the scan saw no logs"
