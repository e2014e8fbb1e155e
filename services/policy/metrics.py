"""Policy's business metrics (Prometheus)."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.contracts import Decision, DrawdownApproved, DrawdownRefused, Event, WindowClosed, WindowOpened

__all__ = ["PolicyMetrics"]


class PolicyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.decisions = Counter(
            "creditwindow_decisions_total",
            "Window decisions published, by outcome, category and reason.",
            ["outcome", "category", "reason", "trigger"],
            registry=registry,
        )
        self.limits = Histogram(
            "creditwindow_limit_granted_cny",
            "Limits of opened windows, CNY.",
            buckets=(500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000),
            registry=registry,
        )
        self.budget_utilisation = Gauge(
            "creditwindow_budget_utilisation", "Share of the segment's exposure budget reserved.", ["segment"], registry=registry
        )
        self.budget_reserved = Gauge(
            "creditwindow_budget_reserved_cny", "Exposure reserved by open windows, CNY.", ["segment"], registry=registry
        )
        self.drawdowns = Counter(
            "creditwindow_drawdowns_total",
            "Drawdown outcomes and repayments published, by outcome, category and reason.",
            ["outcome", "category", "reason"],
            registry=registry,
        )
        self.drawn = Counter("creditwindow_drawn_cny_total", "CNY lent by approved drawdowns.", registry=registry)
        self.policy_updates = Counter(
            "creditwindow_policy_updates_total", "PolicyUpdated events by result.", ["result"], registry=registry
        )
        self.operator_actions = Counter(
            "creditwindow_operator_actions_total",
            "Operators' signed actions on customers (ReviewDecided, CustomerSuspended, SuspensionLifted) by result.",
            ["action", "result"],
            registry=registry,
        )
        self.reviews_open = Gauge("creditwindow_reviews_open", "Reviews by a person under way (every replica sees them all).", registry=registry)
        self.reviews_overdue = Gauge(
            "creditwindow_reviews_overdue",
            "Reviews open longer than the policy's customer_care.review_within (every replica sees them all).",
            registry=registry,
        )
        self.suspended = Gauge("creditwindow_customers_suspended", "Customers whose right to apply is suspended now.", registry=registry)
        self.delays = Counter(
            "creditwindow_decision_delays_total",
            "Customers told their decision is delayed by an outage (Redis or the broker away).",
            registry=registry,
        )

    def observe(self, decisions: Sequence[Decision]) -> None:
        """Dead letters are counted by the outbox that publishes them."""
        for decision in decisions:
            if isinstance(decision, WindowOpened):
                self.decisions.labels("opened", "-", decision.basis.bound_by, decision.trigger).inc()
                self.limits.observe(decision.limit)
            elif isinstance(decision, WindowClosed):
                self.decisions.labels("closed", decision.category, decision.reason, decision.trigger).inc()

    def observe_budget(self, segment: str, reserved: int, budget: int) -> None:
        """A segment's exposure reserved now (CNY) against its budget for the period (0: none)."""
        self.budget_reserved.labels(segment).set(reserved)
        if budget:
            self.budget_utilisation.labels(segment).set(reserved / budget)

    def observe_care(self, *, open_reviews: int, overdue: int, suspended: int) -> None:
        self.reviews_open.set(open_reviews)
        self.reviews_overdue.set(overdue)
        self.suspended.set(suspended)

    def observe_lending(self, outcomes: Sequence[Event]) -> None:
        for event in outcomes:
            if isinstance(event, DrawdownApproved):
                self.drawdowns.labels("approved", "-", "-").inc()
                self.drawn.inc(event.amount)
            elif isinstance(event, DrawdownRefused):
                self.drawdowns.labels("refused", event.category, event.reason).inc()
            else:
                self.drawdowns.labels("repaid", "-", "-").inc()
