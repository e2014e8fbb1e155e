"""The webhook dispatcher: a background task of the notification app that delivers, retries and
dead-letters the deliveries the handler enqueued.

Each round it claims as many due deliveries as it has free slots (each claim leased, so no other
replica POSTs the same one meanwhile) and works them concurrently; a slow or dead partner takes a
slot for at most one bounded try, so other deliveries and every customer's inbox go on. For each:

    pending   -> POST (signed with the partner's key) -> 2xx: delivered
                 | retriable, and the retry budget not spent: due again after a backoff with jitter
                 | else: failed
    delivered -> publish its NotificationSent (channel webhook) -> finish
    failed    -> publish the dead letter with the reason -> finish

Each step is recorded in the queue before the next, so a restart resumes where it stopped: a
delivery leased by a process that died becomes due again when its lease runs out. The one case a
partner can see twice is a POST that succeeded just before a crash, before it was recorded: the
next try carries the same Idempotency-Key, so the partner keeps one.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping

import structlog

from services.notification.metrics import NotificationMetrics
from services.notification.ports import Answer, ClaimedDelivery, EventPublisher, Partner, WebhookQueue, WebhookSender
from services.notification.webhooks import Backoff, Verdict, dead_letter_for_delivery, judge, signed_headers, span
from shared.clock import Clock
from shared.contracts import NotificationSent, Topics

__all__ = ["WebhookDispatcher"]

log = structlog.get_logger("creditwindow.notification")


class WebhookDispatcher:
    def __init__(
        self,
        *,
        queue: WebhookQueue,
        sender: WebhookSender,
        publisher: EventPublisher,
        topics: Topics,
        partners: Mapping[str, Partner],
        retry_budget_s: float,
        backoff: Backoff | None = None,
        concurrency: int = 16,
        poll_s: float = 0.5,
        lease_margin_s: float = 10.0,
        metrics: NotificationMetrics | None = None,
        clock: Clock,
        spread: Callable[[], float] = random.random,
    ) -> None:
        self.queue = queue
        self.sender = sender
        self.publisher = publisher
        self.topics = topics
        self.partners = partners
        self.retry_budget_s = retry_budget_s
        self.backoff = backoff or Backoff()
        self.concurrency = concurrency
        self.poll_s = poll_s
        # A lease outlasts the longest try, so it only runs out when its holder died or froze.
        self.lease_ms = int((sender.attempt_bound_s + lease_margin_s) * 1000)
        self.metrics = metrics
        self.clock = clock
        self.spread = spread
        self._wake = asyncio.Event()
        self._stopping = False
        self._inflight: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for due deliveries now (the handler just enqueued some)."""
        self._wake.set()

    async def start(self) -> None:
        self._stopping = False
        self._loop_task = asyncio.create_task(self._loop(), name="webhook-dispatcher")
        log.info("webhook_dispatcher_started", partners=sorted(self.partners), retry_budget=span(self.retry_budget_s))

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop claiming, let the tries in flight finish (bounded), then cancel what is left."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
            self._loop_task = None
        if self._inflight:
            grace = self.sender.attempt_bound_s + 5 if grace_s is None else grace_s
            _, late = await asyncio.wait(set(self._inflight), timeout=grace)
            for task in late:
                task.cancel()  # its lease runs out and another dispatcher resumes it
            await asyncio.gather(*late, return_exceptions=True)
        log.info("webhook_dispatcher_stopped")

    async def _loop(self) -> None:
        fault_delay = 0.2
        while not self._stopping:
            free = self.concurrency - len(self._inflight)
            if free > 0:
                try:
                    claimed = await self.queue.claim(free, self.lease_ms)
                except Exception as exc:  # noqa: BLE001 - the dispatcher outlives any fault and retries
                    log.warning("webhook_claim_failed", error=repr(exc)[:300], retry_in_s=fault_delay)
                    await asyncio.sleep(fault_delay)
                    fault_delay = min(fault_delay * 2, 5.0)
                    continue
                fault_delay = 0.2
                for item in claimed:
                    self._spawn(item)
                if len(claimed) == free:
                    continue  # more may be due: claim again at once
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            except TimeoutError:
                pass
            self._wake.clear()

    def _spawn(self, claimed: ClaimedDelivery) -> None:
        task = asyncio.create_task(self.handle(claimed))
        self._inflight.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._inflight.discard(finished)
            self._wake.set()  # a slot is free

        task.add_done_callback(done)

    # --- one delivery ------------------------------------------------------------------------------

    async def run_once(self, limit: int | None = None) -> int:
        """Claim the due deliveries and work them to the end of this try (tests, operators)."""
        claimed = await self.queue.claim(limit or self.concurrency, self.lease_ms)
        await asyncio.gather(*(self.handle(item) for item in claimed))
        return len(claimed)

    async def handle(self, claimed: ClaimedDelivery) -> None:
        d = claimed.delivery
        bound = log.bind(
            notification_id=d.notification_id,
            decision_id=d.decision_id,
            customer_id=d.customer_id,
            partner_id=d.partner_id,
        )
        try:
            notice = NotificationSent.model_validate_json(d.notice)
            state, reason = claimed.state, claimed.last_error
            if state == "pending":
                verdict = await self._attempt(claimed, bound)
                if verdict is None:
                    return
                state, reason = verdict.outcome, verdict.reason
            if state == "delivered":
                sent = notice.model_copy(update={"occurred_at": self.clock.now()})
                await self.publisher.publish([(self.topics.notifications, sent)])
                bound.info("webhook_delivered", attempts=claimed.attempts)
                self._count(notice.outcome, "sent")
            else:
                letter = dead_letter_for_delivery(d, reason, attempts=claimed.attempts, at=self.clock.now())
                await self.publisher.publish([(self.topics.deadletter, letter)])
                bound.error("webhook_dead_lettered", attempts=claimed.attempts, reason=reason)
                self._count(notice.outcome, "dead_lettered")
            await self.queue.finish(claimed)
        except Exception as exc:  # noqa: BLE001 - one delivery's fault must not stop the others
            # The lease runs out and the delivery is resumed from its recorded state.
            bound.warning("webhook_delivery_interrupted", error=repr(exc)[:300])

    async def _attempt(self, claimed: ClaimedDelivery, bound: structlog.typing.FilteringBoundLogger) -> Verdict | None:
        d = claimed.delivery
        partner = self.partners.get(d.partner_id)
        answer: Answer | None = None
        delay = 0.0
        if partner is None:
            verdict = Verdict("failed", "no webhook is configured for the partner any more")
        elif claimed.age_s > self.retry_budget_s:
            # The budget ran out while nobody tried (a dispatcher down, tries that never came back).
            verdict = Verdict(
                "failed",
                f"gave up after {claimed.attempts - 1} attempts in {span(claimed.age_s)} "
                f"(retry budget {span(self.retry_budget_s)}; {claimed.last_error or 'interrupted'})",
            )
        else:
            headers = signed_headers(
                partner.key,
                body=d.body,
                idempotency_key=d.notification_id,
                timestamp=int(self.clock.now().timestamp()),
                attempt=claimed.attempts,
            )
            answer = await self.sender.post(partner.url, d.body, headers)
            delay = self.backoff.delay(claimed.attempts, spread=self.spread(), retry_after_s=answer.retry_after_s)
            verdict = judge(
                answer.status,
                answer.error,
                attempt=claimed.attempts,
                age_s=claimed.age_s,
                budget_s=self.retry_budget_s,
                next_delay_s=delay,
            )
        if self.metrics is not None:
            self.metrics.webhook_attempts.labels(verdict.outcome).inc()
        if verdict.outcome == "retry":
            await self.queue.settle(claimed, "retry", delay_ms=int(delay * 1000), error=verdict.reason)
            bound.warning(
                "webhook_attempt_failed", attempt=claimed.attempts, reason=verdict.reason, retry_in_s=round(delay, 2)
            )
            return None
        if not await self.queue.settle(claimed, verdict.outcome, error=verdict.reason):
            bound.warning("webhook_lease_lost", attempt=claimed.attempts)
            return None
        return verdict

    def _count(self, outcome: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.notifications.labels("webhook", outcome, result).inc()
