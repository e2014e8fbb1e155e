"""Notification's business metrics (Prometheus)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter

from shared.contracts import NotificationSent

__all__ = ["NotificationMetrics"]


class NotificationMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = Counter(
            "creditwindow_notifications_total",
            "Notifications by channel, outcome and delivery result.",
            ["channel", "outcome", "result"],
            registry=registry,
        )
        self.webhooks_enqueued = Counter(
            "creditwindow_webhooks_enqueued_total", "Webhook deliveries enqueued for partners.", registry=registry
        )
        self.webhook_attempts = Counter(
            "creditwindow_webhook_attempts_total",
            "Webhook POST tries by verdict: delivered, retry (due again later) or failed (dead-lettered).",
            ["verdict"],
            registry=registry,
        )

    def observe(self, notices: Sequence[NotificationSent], *, webhooks: int = 0) -> None:
        """Dead letters are counted by the outbox that publishes them."""
        for notice in notices:
            self.notifications.labels(notice.channel, notice.outcome, "sent").inc()
        if webhooks:
            self.webhooks_enqueued.inc(webhooks)
