"""`creditwindow demo` / `make demo`: the whole fleet, end to end, on the local platform.

Brings the platform up, starts the three services as separate processes, publishes the 1,000
German Credit applications (fresh application ids, pseudonymous customers), follows every
decision and notification; then every customer whose window opened draws on it (half the limit,
then more than is left for one in ten; some repay), and every outcome and notice is followed too;
prints a summary, and stops the services.
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
from shared.contracts import (
    DeadLetter,
    DrawdownApproved,
    DrawdownRefused,
    DrawdownRequested,
    NotificationSent,
    Repaid,
    RepaymentApplied,
    WindowClosed,
    WindowOpened,
)
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
    asked: int = 0  # drawdowns and repayments
    outcomes: dict[str, DrawdownApproved | DrawdownRefused | RepaymentApplied] = field(default_factory=dict)
    told: dict[str, NotificationSent] = field(default_factory=dict)  # outcome notices, by movement id
    drawdown_seconds: float = 0.0

    @property
    def complete(self) -> bool:
        decided = len(self.decisions) == self.published and len(self.notifications) == self.published
        return decided and len(self.outcomes) == self.asked and len(self.told) == self.asked


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
            elif isinstance(event, NotificationSent) and (event.application_id or "").startswith(prefix):
                if event.application_id not in result.notifications:
                    result.notifications[event.application_id] = event
                    progress.advance(telling)
            elif isinstance(event, DeadLetter):
                result.dead_letters.append(event)

    async with TopicReader(settings, watched, start=start) as reader:
        await reader.until(lambda _: len(result.decisions) == result.published and len(result.notifications) == result.published, timeout_s=300, on_batch=on_batch)
    result.seconds = time.monotonic() - began
    return result


def _movements(run_id: str, opened: list[WindowOpened]) -> list[DrawdownRequested | Repaid]:
    """Every opened window drawn on (half the limit); one in ten then asks for more than is left, one
    in five repays part."""
    asks: list[DrawdownRequested | Repaid] = []
    for n, window in enumerate(opened):
        customer, half = window.customer_id, max(100, window.limit // 2)
        base = f"dd_{run_id}_{n:04d}"
        asks.append(DrawdownRequested(correlation_id=base, drawdown_id=f"{base}a", customer_id=customer, amount=half, locale=window.locale, producer="demo"))
        if n % 10 == 0:
            asks.append(DrawdownRequested(correlation_id=base, drawdown_id=f"{base}b", customer_id=customer, amount=window.limit, locale=window.locale, producer="demo"))
        if n % 5 == 0:
            asks.append(Repaid(correlation_id=base, repayment_id=f"rp_{run_id}_{n:04d}", customer_id=customer, amount=max(100, half // 2), locale=window.locale, producer="demo"))
    return asks


async def _draw_and_follow(settings: Settings, run_id: str, result: DemoResult, progress: Progress) -> None:
    topics = settings.topics
    watched = [topics.lending_results, topics.notifications]
    start = await end_offsets(settings, watched)
    opened = [d for d in result.decisions.values() if isinstance(d, WindowOpened)]
    asks = _movements(run_id, opened)
    result.asked = len(asks)
    ids = {a.drawdown_id if isinstance(a, DrawdownRequested) else a.repayment_id for a in asks}
    answering = progress.add_task("drawdowns answered", total=len(asks))
    began = time.monotonic()
    async with Publisher(settings) as publisher:
        await asyncio.gather(*[await publisher.send(topics.lending_requests, ask) for ask in asks])

    def on_batch(records: list) -> None:  # type: ignore[type-arg]
        for item in records:
            event = item.event
            if isinstance(event, DrawdownApproved | DrawdownRefused | RepaymentApplied):
                ident = event.repayment_id if isinstance(event, RepaymentApplied) else event.drawdown_id
                if ident in ids and ident not in result.outcomes:
                    result.outcomes[ident] = event
                    progress.advance(answering)
            elif isinstance(event, NotificationSent) and event.movement_id in ids:
                result.told.setdefault(event.movement_id, event)

    async with TopicReader(settings, watched, start=start) as reader:
        await reader.until(lambda _: len(result.outcomes) == len(ids) and len(result.told) == len(ids), timeout_s=120, on_batch=on_batch)
    result.drawdown_seconds = time.monotonic() - began


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
    if result.outcomes:
        table = Table(title="Drawdowns on the opened windows")
        for name in ("outcome", "category", "reason", "count", "CNY"):
            table.add_column(name, justify="right" if name in ("count", "CNY") else "left")
        kinds = Counter(
            (type(o).__name__, getattr(o, "category", ""), getattr(o, "reason", "")) for o in result.outcomes.values()
        )
        money = Counter()
        for o in result.outcomes.values():
            money[(type(o).__name__, getattr(o, "category", ""), getattr(o, "reason", ""))] += o.applied if isinstance(o, RepaymentApplied) else o.amount
        for key, n in kinds.most_common():
            table.add_row(key[0], key[1], key[2], str(n), f"{money[key]:,}")
        console.print(table)
        refused = next((n for n in result.told.values() if n.outcome == "drawdown_refused"), None)
        if refused is not None:
            console.print(Panel(refused.body, title=f"{refused.title}  [{refused.locale}, {refused.outcome}]", expand=False))
    console.print(
        f"{result.published} applications -> {len(result.decisions)} decisions, {len(result.notifications)} notifications, "
        f"{len(result.dead_letters)} dead letters in {result.seconds:.1f} s "
        f"({len(result.decisions) / max(result.seconds, 1e-9):.0f} decisions/s)"
    )
    if result.asked:
        console.print(
            f"{result.asked} drawdowns and repayments -> {len(result.outcomes)} outcomes, {len(result.told)} told, "
            f"in {result.drawdown_seconds:.1f} s"
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
            asyncio.run(_draw_and_follow(settings, run_id, result, progress))
        for proc in fleet.exited():
            console.print(f"[red]{proc.name} exited[/]:\n{fleet.tail(proc.name)}")
    _summary(console, result)
    console.print(f"demo took {time.monotonic() - began:.1f} s in all")
    return result
