"""`creditwindow profile`: where each service's CPU goes under load, sampled with py-spy.

The fleet runs as it does in `creditwindow bench` (one process per service on the local platform)
while applications arrive as fast as it can take them; py-spy samples every service process for a
while without stopping it (`--nonblocking`) and writes a flame graph (SVG) per service, and the
collapsed stacks from which the "where the time goes" table is computed: for each part of the
work, the share of the process's samples whose stack passes through it (inclusive: a part that
calls another counts both). `docs/profile.md` gets the table and links the graphs.

Only 127.0.0.1; bounded in applications and seconds; it stops its processes and deletes its namespace.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from devtools.fleet import Fleet
from devtools.germancredit import applications
from devtools.namespaces import delete_namespace
from devtools.platform import LocalPlatform
from shared.messaging import ensure_topics
from shared.messaging.topic_io import Publisher
from shared.settings import REPO_ROOT, Settings

__all__ = ["PARTS", "ProfilePlan", "ServiceProfile", "run_profile", "shares"]

# What each service spends its time on: a part is matched by any of its frames' names (a substring of
# "function (file)" as py-spy writes it). Parts overlap where code nests; "other" is what no part claims.
PARTS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "scoring": [
        ("scorecard: points, PD, reasons", ("scorecard.py",)),
        ("recourse search", ("recourse.py",)),
        ("decoding and validating applications", ("wire.py", "model_validate_json")),
        ("encoding scores (pydantic JSON)", ("model_dump_json",)),
        ("log lines (structlog, redaction)", ("structlog", "shared/logging.py")),
        ("metrics (PSI, histograms)", ("metrics.py", "prometheus_client")),
        ("Kafka client (aiokafka)", ("aiokafka",)),
        ("FastStream (subscriber, middlewares)", ("faststream",)),
    ],
    "policy": [
        ("the rules and the decision events", ("rules.py", "decisions.py")),
        ("the book in Redis (script call, JSON in and out)", ("redis_book.py", "redis_state.py")),
        ("Redis client (redis-py, hiredis)", ("redis/",)),
        ("decoding and validating scores", ("wire.py", "model_validate_json")),
        ("encoding decisions (pydantic JSON)", ("model_dump_json",)),
        ("log lines (structlog, redaction)", ("structlog", "shared/logging.py")),
        ("metrics", ("metrics.py", "prometheus_client")),
        ("Kafka client (aiokafka)", ("aiokafka",)),
        ("FastStream (subscriber, middlewares)", ("faststream",)),
    ],
    "notification": [
        ("rendering the disclosure (Jinja2, Babel)", ("disclosure.py", "jinja2", "babel")),
        ("the ledger in Redis", ("redis_ledger.py", "redis_webhooks.py", "redis_state.py")),
        ("Redis client (redis-py, hiredis)", ("redis/",)),
        ("decoding and validating decisions", ("wire.py", "model_validate_json")),
        ("encoding notices (pydantic JSON)", ("model_dump_json",)),
        ("log lines (structlog, redaction)", ("structlog", "shared/logging.py")),
        ("metrics", ("metrics.py", "prometheus_client")),
        ("Kafka client (aiokafka)", ("aiokafka",)),
        ("FastStream (subscriber, middlewares)", ("faststream",)),
    ],
}


@dataclass(frozen=True, slots=True)
class ProfilePlan:
    applications: int = 40_000
    seconds: float = 20.0
    rate: int = 100  # samples a second per process
    out: Path = REPO_ROOT / "docs" / "profile"
    label: str = "now"  # the graphs are written as <service>-<label>.svg


@dataclass(slots=True)
class ServiceProfile:
    service: str
    samples: int = 0
    parts: dict[str, float] = field(default_factory=dict)
    graph: Path | None = None


def shares(collapsed: str, parts: list[tuple[str, tuple[str, ...]]]) -> tuple[int, dict[str, float]]:
    """From py-spy's collapsed stacks (busy samples only: py-spy leaves idle threads out): how many
    samples, and each part's share of them. Pure."""
    total = 0
    hits: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        for name, needles in parts:
            if any(needle in stack for needle in needles):
                hits[name] += int(count)
    return total, {name: hits[name] / max(1, total) for name, _ in parts}


async def _load(settings: Settings, plan: ProfilePlan) -> None:
    async with Publisher(settings, linger_ms=5) as publisher:
        futures = [await publisher.send(settings.topics.applications, a) for a in applications(f"prof{uuid.uuid4().hex[:6]}", count=plan.applications)]
        await asyncio.gather(*futures)


def run_profile(plan: ProfilePlan, console: Console | None = None) -> list[ServiceProfile]:
    console = console or Console()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise RuntimeError("py-spy not found: pip install py-spy (the `dev` extra has it)")
    base = Settings()
    LocalPlatform(base, say=lambda line: console.print(line, highlight=False)).up()
    namespace = f"prof{time.strftime('%H%M%S')}"
    settings = base.model_copy(update={"topic_namespace": namespace})
    asyncio.run(ensure_topics(settings))
    plan.out.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(env={"CW_TOPIC_NAMESPACE": namespace}, log_dir=base.home / "logs" / namespace)
    profiles: list[ServiceProfile] = []
    try:
        fleet.start()
        fleet.wait_ready(90)
        loader = subprocess.Popen([sys.executable, "-c", _LOADER, namespace, str(plan.applications)])
        time.sleep(2.0)  # the load is flowing
        samplers = []
        for name, proc in fleet.processes.items():
            assert proc.process is not None
            service = name.rsplit("-", 1)[0]
            graph = plan.out / f"{service}-{plan.label}.svg"
            common = [spy, "record", "--nonblocking", "--pid", str(proc.process.pid), "--rate", str(plan.rate), "--duration", str(int(plan.seconds))]
            samplers.append((service, graph, subprocess.Popen([*common, "--format", "flamegraph", "-o", str(graph)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
            raw = plan.out / f"{service}-{plan.label}.collapsed"
            samplers.append((service, raw, subprocess.Popen([*common, "--format", "raw", "-o", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        for _, _, sampler in samplers:
            sampler.wait(timeout=plan.seconds + 60)
        loader.wait(timeout=600)
        for service in PARTS:
            raw = plan.out / f"{service}-{plan.label}.collapsed"
            total, found = shares(raw.read_text() if raw.exists() else "", PARTS[service])
            profiles.append(ServiceProfile(service, total, found, plan.out / f"{service}-{plan.label}.svg"))
            raw.unlink(missing_ok=True)
    finally:
        fleet.stop()
        asyncio.run(delete_namespace(settings))
    return profiles


_LOADER = """
import asyncio, sys
from devtools.profile import ProfilePlan, _load
from shared.settings import Settings
settings = Settings().model_copy(update={"topic_namespace": sys.argv[1]})
asyncio.run(_load(settings, ProfilePlan(applications=int(sys.argv[2]))))
"""
