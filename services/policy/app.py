"""The policy service process: `creditwindow run policy` or `faststream run services.policy.app:create_app --factory`."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from faststream.asgi import AsgiResponse
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import CollectorRegistry

from services.policy.deciding import Decider, PolicyState
from services.policy.document import load_policy
from services.policy.handlers import PolicyDeps, build_router, refuse_updates, restore_policy
from services.policy.metrics import PolicyMetrics
from services.policy.redis_limits import RedisLimits
from services.policy.shadow import LiveBook, ShadowLimits, ShadowOutbox
from shared.logging import configure_logging
from shared.messaging import Outbox, ProducerSender, is_transient, make_broker
from shared.redis_connection import make_redis
from shared.runtime import FleetApp, build_app, json_response, serve
from shared.settings import Settings
from shared.wire import RefusedRecord

__all__ = ["create_app", "main"]

log = structlog.get_logger("creditwindow.policy")
SWEEP_INTERVAL_S = 1.0


def create_app(settings: Settings | None = None) -> FleetApp:
    settings = settings or Settings()
    service = "policy-shadow" if settings.shadow else "policy"
    configure_logging(service=service, level=settings.log_level, fmt=settings.log_format, instance=settings.instance_id)
    registry = CollectorRegistry()
    broker = make_broker(settings, service=service, middlewares=[KafkaPrometheusMiddleware(registry=registry, app_name=service)])
    redis = make_redis(settings)
    # Shadow mode: the candidate decides in memory (Redis only read) and dead-letters nothing.
    store = ShadowLimits(LiveBook(redis, settings.redis_prefix)) if settings.shadow else RedisLimits(redis, settings.redis_prefix)
    state = PolicyState(load_policy(settings.policy_path), source=f"file:{settings.policy_path.name}")
    sender = ProducerSender(settings, client_id=f"creditwindow-{service}-out")
    outbox = (ShadowOutbox if settings.shadow else Outbox)(sender, service=service, registry=registry)
    metrics = PolicyMetrics(registry)
    decider = Decider(store=store, outbox=outbox, topics=settings.topics, state=state, shadow=settings.shadow)
    deps = PolicyDeps(settings, outbox, metrics, decider, state)
    broker.include_router(build_router(deps))
    tasks: list[asyncio.Task[None]] = []
    refused_at_start: list[RefusedRecord] = []

    async def sweep_forever() -> None:
        while True:
            try:
                metrics.observe(await decider.sweep())
                for segment, reserved in (await store.budgets()).items():
                    budget = state.active.budgets.get(segment)  # type: ignore[call-overload]
                    metrics.budget_reserved.labels(segment).set(reserved.get("exposure", 0))
                    if budget and budget.exposure:
                        metrics.budget_utilisation.labels(segment).set(reserved.get("exposure", 0) / budget.exposure)
            except Exception as exc:  # the sweeper must outlive any fault; it retries next tick
                log.warning("sweep_failed", error=repr(exc)[:300], transient=is_transient(exc))
            await asyncio.sleep(SWEEP_INTERVAL_S)

    async def restore() -> None:
        if settings.shadow:
            # The candidate file is the shadow's policy: signed updates for the live fleet do not replace it.
            log.info("shadow_policy", policy=state.active.label, source=state.source, topic=settings.topics.shadow_windows)
            return
        if settings.uses_dev_signing_key:
            log.warning("dev_signing_key", hint="set CW_POLICY_SIGNING_KEY outside the local platform")
        refused_at_start.extend(await restore_policy(settings, state))

    async def start_sweeper() -> None:
        await refuse_updates(deps, refused_at_start)
        if not settings.shadow:
            tasks.append(asyncio.create_task(sweep_forever(), name="policy-sweeper"))

    async def stop_sweeper() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def limits(customer_id: str) -> AsgiResponse:
        window = await store.current(customer_id)
        if window is None:
            return json_response({"customer_id": customer_id, "status": "none"}, 404)
        return json_response(window.as_dict())

    return build_app(
        service=service,
        settings=settings,
        broker=broker,
        registry=registry,
        outbox=outbox,
        redis=redis,
        on_startup=[restore],
        after_startup=[start_sweeper],
        on_shutdown=[stop_sweeper],
        prefix_routes=[("/limits/", limits)],
        description="Decides borrowing windows under the active signed policy and the portfolio budget.",
    )


def main(port: int | None = None) -> None:
    settings = Settings()
    serve(create_app(settings), host=settings.http_host, port=settings.policy_http_port if port is None else port)
