"""What every service process shares: its plumbing (metrics registry, Kafka broker, Redis client,
outbox), and the ASGI app with /health and /metrics, startup and shutdown.

A service's `app.py` takes its `Plumbing`, wires its logic to it and hands it back to `build_app`;
nothing connects until the app starts.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.specification import AsyncAPI
from prometheus_client import CollectorRegistry, make_asgi_app
from redis.asyncio import Redis

from shared.asyncapi import describe_events
from shared.clock import Clock
from shared.environments import UnsafeEnvironment, check_environment
from shared.logging import configure_logging
from shared.messaging import Outbox, ProducerSender, ServiceHealth, ensure_topics, make_broker, retry_transient
from shared.redis_connection import make_redis
from shared.settings import Settings

__all__ = ["FleetApp", "Plumbing", "build_app", "json_response", "plumbing", "serve"]

log = structlog.get_logger("creditwindow.runtime")


def json_response(body: Any, status: int = 200) -> AsgiResponse:
    return AsgiResponse(
        json.dumps(body, default=str, ensure_ascii=False).encode(),
        status_code=status,
        headers={"content-type": "application/json"},
    )


class FleetApp(AsgiFastStream):
    """A service's app: /health and /metrics only. Customer data is served apart, behind tokens
    (shared/customer_api.py), never on this listener."""


@dataclass(frozen=True, slots=True)
class Plumbing:
    """What a service process is built on: its settings, metrics registry, Kafka broker, Redis client and outbox."""

    service: str
    settings: Settings
    registry: CollectorRegistry
    broker: KafkaBroker
    redis: Redis
    outbox: Outbox
    health: ServiceHealth
    clock: Clock  # the one clock of the process (settings.clock(): the system's)


def plumbing(settings: Settings, service: str, *, policy_keys: bool = True) -> Plumbing:
    """Logging configured, the environment checked (UnsafeEnvironment), and the parts every service
    needs made (none of them connects yet). `policy_keys`: the service verifies policy updates and
    operator actions, so its key ring is checked even where it is not set."""
    configure_logging(
        service=service,
        level=settings.log_level,
        fmt=settings.log_format,
        instance=settings.instance_id,
        secrets=settings.secret_values(),
    )
    try:
        check_environment(settings, policy_keys=policy_keys)
    except UnsafeEnvironment as exc:
        log.error("unsafe_environment", environment=settings.environment, problems=exc.problems)
        raise
    registry = CollectorRegistry()
    clock = settings.clock()
    return Plumbing(
        service=service,
        settings=settings,
        registry=registry,
        broker=make_broker(settings, service=service, middlewares=[KafkaPrometheusMiddleware(registry=registry, app_name=service)]),
        redis=make_redis(settings),
        # The outbox publishes with its own producer: FastStream's per-message publish path costs more.
        outbox=Outbox(ProducerSender(settings, client_id=f"creditwindow-{service}-out"), service=service, clock=clock, registry=registry),
        health=ServiceHealth(registry, clock=clock),
        clock=clock,
    )


def build_app(
    parts: Plumbing,
    *,
    on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
    after_startup: Sequence[Callable[[], Awaitable[None]]] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
    description: str = "",
) -> FleetApp:
    """The service's app: topics ensured before consuming, Redis closed after, /health and /metrics."""
    service, broker, redis, outbox = parts.service, parts.broker, parts.redis, parts.outbox

    @get(include_in_schema=False)
    async def health(scope: Any) -> AsgiResponse:
        # Scoring itself needs no Redis, but the fleet decides nothing without it: every service says so.
        kafka_ok = await broker.ping(timeout=2.0)
        try:
            redis_ok = bool(await asyncio.wait_for(redis.ping(), 2.0))
        except Exception:
            redis_ok = False
        ready = kafka_ok and redis_ok and parts.health.ready
        body: dict[str, object] = {"service": service, "status": "ready" if ready else "unavailable", "kafka": kafka_ok, "redis": redis_ok}
        if parts.health.problems:
            body["problems"] = {part: problem.as_dict() for part, problem in parts.health.problems.items()}
        return json_response(body, 200 if ready else 503)

    async def topics() -> None:
        # A broker of a cluster that is just restarting answers NodeNotReady: a start waits, it does not die.
        await retry_transient(lambda: ensure_topics(parts.settings), settings=parts.settings, what="ensure_topics", give_up_after_s=90.0)

    async def close_redis() -> None:
        await redis.aclose()

    async def quiet_gc() -> None:
        # Everything built at start (models, templates, the scorecard) never dies: move it out of the
        # collector's sight, and collect young objects less often. Cuts pauses on the message path.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 100)

    async def start_outbox() -> None:
        await outbox.start()

    async def stop_outbox() -> None:
        await outbox.stop()

    describe_events(broker)
    app = FleetApp(
        broker,
        logger=logging.getLogger(f"creditwindow.{service}.app"),
        asgi_routes=[("/health", health), ("/metrics", make_asgi_app(parts.registry))],
        on_startup=[topics, start_outbox, *on_startup],
        after_startup=[*after_startup, quiet_gc],
        on_shutdown=[*on_shutdown],
        after_shutdown=[stop_outbox, close_redis],
        specification=AsyncAPI(
            title=f"creditwindow {service}",
            version="1.0.0",
            description=description or f"The creditwindow {service} service.",
        ),
    )
    return app


def serve(app: FleetApp, *, host: str, port: int) -> None:
    """Run until SIGINT/SIGTERM. Port 0 binds a free port (replicas on one host)."""
    # log_config None: uvicorn logs through the process's structlog set-up, not its own handlers.
    asyncio.run(app.run(run_extra_options={"host": host, "port": port, "access_log": "false", "log_config": None}))
