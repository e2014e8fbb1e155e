"""`creditwindow demo` / `make demo`: the whole fleet, end to end, on the local platform.

Brings the platform up, starts the three services as separate processes, publishes the 1,000
German Credit applications (fresh application ids, pseudonymous customers), follows every
decision and notification, prints a summary, and stops the services.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from devtools.fleet import Fleet
from devtools.germancredit import applications
from devtools.platform import LocalPlatform
from shared.contracts import DeadLetter, NotificationSent, WindowClosed, WindowOpened
from shared.messaging import ensure_topics
from shared.messaging.topic_io import Publisher, TopicReader, end_offsets
from shared.settings import Settings

__all__ = ["DemoResult", "run_demo"]


@dataclass(slots=True)
class DemoResult:
    published: int
    decisions: dict[str, WindowOpened | WindowClosed] = field(default_factory=dict)
    notifications: dict[str, NotificationSent] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return len(self.decisions) == self.published and len(self.notifications) == self.published


async def _publish_and_follow(settings: Settings, run_id: str, count: int | None, progress: Progress) -> DemoResult:
    topics = settings.topics
    watched = [topics.windows, topics.notifications, topics.deadletter]
    start = await end_offsets(settings, watched)
    batch = list(applications(run_id, count=count))
    result = DemoResult(published=len(batch))
    sending = progress.add_task("publishing applications", total=len(batch))
    deciding = progress.add_task("windows decided", total=len(batch))
    telling = progress.add_task("customers notified", total=len(batch))
    prefix = f"app_{run_id}_"
    began = time.monotonic()
    async with Publisher(settings) as publisher:
        futures = []
        for application in batch:
            futures.append(await publisher.send(topics.applications, application))
            progress.advance(sending)
        await asyncio.gather(*futures)

    def on_batch(records: list) -> None:  # type: ignore[type-arg]
        for item in records:
            event = item.event
            if isinstance(event, (WindowOpened, WindowClosed)) and event.application_id.startswith(prefix):
                if event.trigger == "application" and event.application_id not in result.decisions:
                    result.decisions[event.application_id] = event
                    progress.advance(deciding)
            elif isinstance(event, NotificationSent) and event.application_id.startswith(prefix):
                if event.application_id not in result.notifications:
                    result.notifications[event.application_id] = event
                    progress.advance(telling)
            elif isinstance(event, DeadLetter):
                result.dead_letters.append(event)

    async with TopicReader(settings, watched, start=start) as reader:
        await reader.until(lambda _: result.complete, timeout_s=300, on_batch=on_batch)
    result.seconds = time.monotonic() - began
    return result


def _summary(console: Console, result: DemoResult) -> None:
    decisions = list(result.decisions.values())
    opened = [d for d in decisions if isinstance(d, WindowOpened)]
    closed = [d for d in decisions if isinstance(d, WindowClosed)]

    table = Table(title="Borrowing windows", show_lines=False)
    table.add_column("result")
    table.add_column("category")
    table.add_column("reason")
    table.add_column("count", justify="right")
    table.add_row("[green]opened[/]", "", "", str(len(opened)))
    for (category, reason), n in sorted(Counter((d.category, d.reason) for d in closed).items(), key=lambda kv: -kv[1]):
        table.add_row("[red]closed[/]", category, reason, str(n))
    console.print(table)

    if opened:
        limits = sorted(d.limit for d in opened)
        quantiles = statistics.quantiles(limits, n=10) if len(limits) > 1 else [limits[0]] * 9
        dist = Table(title="Limits of opened windows (CNY)")
        for name in ("min", "p10", "median", "p90", "max", "total"):
            dist.add_column(name, justify="right")
        dist.add_row(
            f"{limits[0]:,}", f"{quantiles[0]:,.0f}", f"{statistics.median(limits):,.0f}", f"{quantiles[-1]:,.0f}",
            f"{limits[-1]:,}", f"{sum(limits):,}",
        )  # fmt: skip
        console.print(dist)
        bounds = Counter(d.basis.bound_by for d in opened)
        console.print("limit set by: " + ", ".join(f"{k} {v}" for k, v in bounds.most_common()))
        edges = [0, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 200_001]
        width = 40
        counts = [sum(1 for x in limits if lo <= x < hi) for lo, hi in zip(edges, edges[1:], strict=False)]
        top = max(counts) or 1
        for (lo, hi), n in zip(zip(edges, edges[1:], strict=False), counts, strict=True):
            console.print(f"  {lo:>7,} - {hi - 1:>7,}  {'#' * round(width * n / top):<{width}} {n}")

    shown: set[tuple[str, str | None, str]] = set()
    samples = []
    for notice in result.notifications.values():
        kind = (notice.outcome, notice.category, notice.locale)
        if kind not in shown and len(samples) < 5:
            shown.add(kind)
            samples.append(notice)
    for notice in samples:
        console.print(Panel(notice.body, title=f"{notice.title}  [{notice.locale}, {notice.outcome}{', ' + notice.category if notice.category else ''}]", expand=False))
    console.print(
        f"{result.published} applications -> {len(result.decisions)} decisions, {len(result.notifications)} notifications, "
        f"{len(result.dead_letters)} dead letters in {result.seconds:.1f} s "
        f"({len(result.decisions) / max(result.seconds, 1e-9):.0f} decisions/s)"
    )


def run_demo(*, count: int | None = None, console: Console | None = None) -> DemoResult:
    console = console or Console()
    settings = Settings()
    began = time.monotonic()
    LocalPlatform(settings, say=lambda line: console.print(line, highlight=False)).up()
    asyncio.run(ensure_topics(settings))
    run_id = time.strftime("%Y%m%d%H%M%S") + uuid.uuid4().hex[:4]
    env = {k: v for k, v in os.environ.items() if k.startswith(("CW_", "KAFKA_", "REDIS_"))}
    fleet = Fleet(env=env, log_dir=settings.home / "logs" / "demo")
    console.print(f"starting scoring, policy and notification as separate processes (logs in {fleet.log_dir})")
    with fleet:
        columns = (TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            result = asyncio.run(_publish_and_follow(settings, run_id, count, progress))
        for proc in fleet.exited():
            console.print(f"[red]{proc.name} exited[/]:\n{fleet.tail(proc.name)}")
    _summary(console, result)
    console.print(f"demo took {time.monotonic() - began:.1f} s in all")
    return result
