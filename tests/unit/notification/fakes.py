"""Small stand-ins for the notification's partner-facing ports, recording what happened.

The webhook queue has no fake: tests use `services.notification.memory_webhooks.MemoryWebhookQueue`,
the queue's own rules in memory (held equal to the Lua by tests/e2e/test_notification_twins.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.notification.ports import Answer


@dataclass
class FakeSender:
    """Answers each POST from a script (the last answer repeats), recording every request."""

    answers: list[Answer] = field(default_factory=lambda: [Answer(200)])
    attempt_bound_s: float = 1.0
    posts: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        self.posts.append((url, body, dict(headers)))
        return self.answers[min(len(self.posts), len(self.answers)) - 1]
