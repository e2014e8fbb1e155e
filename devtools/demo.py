"""`creditwindow demo` / `make demo`: the whole fleet, end to end, on the local platform.

Brings the platform up, starts the three services as separate processes, publishes the 1,000
German Credit applications (fresh application ids, pseudonymous customers), follows every
decision and notification; then every customer whose window opened draws on it (half the limit
over a term the policy offers, or one it does not for some; more than is left for one in ten;
some repay), and every outcome, loan and notice is followed too. Then the loans fall due: the
fleet runs a testing policy (`loans_policy`: days of a second, instalments every 40 of them, which
a production fleet refuses), so within a minute most borrowers repay everything early (a little
more than they owe: the surplus is kept as credit) and a few dozen miss their first instalment:
reminded, then missed (their window closes), then 30 days past due; half of those cure it by
paying everything, and apply again, to be closed by our own record. Prints a summary,
and stops the services.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import yaml
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from devtools.fleet import Fleet
from devtools.germancredit import applications
from devtools.platform import LocalPlatform
from services.policy.control.document import load_policy, parse_policy
from shared.contracts import (
    ApplicationReceived,
    DeadLetter,
    DrawdownApproved,
    DrawdownRefused,
    DrawdownRequested,
    InstalmentDueSoon,
    InstalmentOverdue,
    LoanBooked,
    NotificationSent,
    OverdueCured,
    Repaid,
    RepaymentApplied,
    WindowClosed,
    WindowOpened,
)
from shared.messaging import ensure_topics
from shared.messaging.topic_io import Publisher, TopicReader, end_offsets
from shared.settings import Settings

__all__ = ["DemoResult", "loans_policy", "run_demo"]

# The testing policy's calendar: a day lasts a second, an instalment falls due every 40 of them.
DAY_S, INTERVAL_DAYS = 1, 40


def loans_policy(settings: Settings, path: Path) -> Path:
    """The shipped policy with a testing lending section (instalments within seconds), written to `path`:
    the demo and the fault suite run the fleet on it (local and test only: production refuses it)."""
    document = yaml.safe_load(settings.policy_path.read_text(encoding="utf-8"))
    document["description"] = "The default policy with loans that fall due within seconds (testing: never in production)."
    document["lending"] = {
        **document.get("lending", {}), "testing": True, "day_length": f"PT{DAY_S}S", "instalment_interval": f"PT{DAY_S * INTERVAL_DAYS}S",
    }  # fmt: skip
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    parse_policy(text)  # refuse to start a fleet on a policy that does not validate
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


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
    applications: dict[str, ApplicationReceived] = field(default_factory=dict)  # by customer
    loans: dict[str, LoanBooked] = field(default_factory=dict)  # by loan id
    missing: set[str] = field(default_factory=set)  # loans whose first instalment is missed on purpose
    curing: set[str] = field(default_factory=set)  # customers who then pay everything
    steps: dict[str, InstalmentDueSoon | InstalmentOverdue] = field(default_factory=dict)  # by event id
    cures: dict[str, OverdueCured] = field(default_factory=dict)  # by customer
    overdue_closures: dict[str, WindowClosed] = field(default_factory=dict)  # by customer
    again: dict[str, WindowOpened | WindowClosed] = field(default_factory=dict)  # the cured customers' later applications
    early: dict[str, RepaymentApplied] = field(default_factory=dict)  # repaid everything early, by customer
    loan_notices: dict[str, NotificationSent] = field(default_factory=dict)  # by notification id
    due_seconds: float = 0.0

    @property
    def complete(self) -> bool:
        decided = len(self.decisions) == self.published and len(self.notifications) == self.published
        lent = len(self.outcomes) == self.asked and len(self.told) == self.asked
        approved = {o.loan_id for o in self.outcomes.values() if isinstance(o, DrawdownApproved)}
        return decided and lent and approved <= set(self.loans) and self._fell_due

    @property
    def _fell_due(self) -> bool:
        missed = {s.loan_id for s in self.steps.values() if isinstance(s, InstalmentOverdue) and s.step == 1}
        return self.missing <= missed and set(self.curing) <= set(self.again) and any(
            isinstance(s, InstalmentOverdue) and s.step == 30 for s in self.steps.values()
        )


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
    result.applications = {a.customer_id: a for a in batch}
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


TERMS = (3, 6, 12)


def _movements(run_id: str, opened: list[WindowOpened]) -> list[DrawdownRequested | Repaid]:
    """Every opened window drawn on (half the limit, over a term the policy offers); one in ten then
    asks for more than is left, one in twelve asks a term it does not offer (5 months), one in five
    repays part at once (early: less principal, less interest)."""
    asks: list[DrawdownRequested | Repaid] = []
    for n, window in enumerate(opened):
        customer, half = window.customer_id, max(100, window.limit // 2)
        base = f"dd_{run_id}_{n:04d}"
        asks.append(DrawdownRequested(
            correlation_id=base, drawdown_id=f"{base}a", customer_id=customer, amount=half, locale=window.locale, producer="demo",
            term_months=TERMS[n % 3],
        ))  # fmt: skip
        if n % 10 == 0:
            asks.append(DrawdownRequested(correlation_id=base, drawdown_id=f"{base}b", customer_id=customer, amount=window.limit, locale=window.locale, producer="demo"))
        if n % 12 == 1:
            asks.append(DrawdownRequested(correlation_id=base, drawdown_id=f"{base}c", customer_id=customer, amount=100, locale=window.locale, producer="demo", term_months=5))
        if n % 5 == 0:
            asks.append(Repaid(correlation_id=base, repayment_id=f"rp_{run_id}_{n:04d}", customer_id=customer, amount=max(100, half // 2), locale=window.locale, producer="demo"))
    return asks


async def _draw_and_follow(settings: Settings, run_id: str, result: DemoResult, progress: Progress) -> None:
    topics = settings.topics
    watched = [topics.lending_results, topics.notifications, topics.loans]
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
            elif isinstance(event, LoanBooked) and event.drawdown_id in ids:
                result.loans.setdefault(event.loan_id, event)
            elif isinstance(event, NotificationSent) and event.about == "loan" and event.channel == "inbox":
                result.loan_notices.setdefault(str(event.notification_id), event)

    def lent(_: object) -> bool:
        approved = {o.loan_id for o in result.outcomes.values() if isinstance(o, DrawdownApproved)}
        return len(result.outcomes) == len(ids) and len(result.told) == len(ids) and approved <= set(result.loans)

    async with TopicReader(settings, watched, start=start) as reader:
        await reader.until(lent, timeout_s=120, on_batch=on_batch)
    result.drawdown_seconds = time.monotonic() - began


def _owed(loan: LoanBooked) -> int:
    """Enough to pay a loan off within a few dozen (one-second) days of its booking: its principal and 5% for the
    interest counted by the day since, in CNY rounded up; the surplus is kept as credit."""
    return -(-loan.principal_fen * 105 // 10_000) + 10


async def _fall_due(settings: Settings, run_id: str, result: DemoResult, progress: Progress) -> None:
    """The loans fall due: most borrowers repay everything early, a few dozen miss their first
    instalment; half of those then cure it and apply again. Follows every due-date notice."""
    topics = settings.topics
    watched = [topics.windows, topics.loans, topics.notifications, topics.lending_results]
    start = await end_offsets(settings, watched)
    began = time.monotonic()
    borrowers: dict[str, list[LoanBooked]] = {}
    for loan in sorted(result.loans.values(), key=lambda e: e.loan_id):
        if loan.instalments:
            borrowers.setdefault(loan.customer_id, []).append(loan)
    repayments: list[Repaid] = []
    for n, (customer, loans) in enumerate(borrowers.items()):
        if n % 5 == 1 and len(result.missing) < 40:  # a few dozen borrowers miss their first instalment
            result.missing.update(loan.loan_id for loan in loans)
            if n % 2:
                result.curing.add(customer)
            continue
        # the others pay everything early, with a little more (the interest of the days since is not known to them)
        repayments.append(Repaid(
            correlation_id=loans[0].loan_id, repayment_id=f"rp_{run_id}_early_{n:04d}", customer_id=customer,
            amount=sum(_owed(loan) for loan in loans), locale=loans[0].locale, producer="demo",
        ))  # fmt: skip
    missing = {result.loans[i].customer_id for i in result.missing}
    waiting = progress.add_task("instalments falling due", total=len(result.missing) + len(result.curing))
    async with Publisher(settings) as publisher:
        await asyncio.gather(*[await publisher.send(topics.lending_requests, r) for r in repayments])

        cured_sent: set[str] = set()
        reapplied: set[str] = set()
        pending: list[tuple[str, object]] = []

        def on_batch(records: list) -> None:  # type: ignore[type-arg]
            for item in records:
                event = item.event
                if isinstance(event, InstalmentDueSoon | InstalmentOverdue) and event.loan_id in result.loans:
                    if event.event_id not in result.steps and isinstance(event, InstalmentOverdue) and event.step == 1 and event.loan_id in result.missing:
                        progress.advance(waiting)
                    result.steps.setdefault(str(event.event_id), event)
                    if isinstance(event, InstalmentOverdue) and event.customer_id in result.curing and event.customer_id not in cured_sent:
                        cured_sent.add(event.customer_id)  # missed: now they pay everything
                        loans = borrowers[event.customer_id]
                        pending.append(("repay", Repaid(
                            correlation_id=loans[0].loan_id, repayment_id=f"rp_{run_id}_cure_{loans[0].loan_id[-5:]}",
                            customer_id=event.customer_id, amount=sum(_owed(loan) for loan in loans), locale=loans[0].locale, producer="demo",
                        )))  # fmt: skip
                elif isinstance(event, OverdueCured) and event.customer_id in result.curing:
                    if event.customer_id not in result.cures:
                        result.cures[event.customer_id] = event
                        if event.customer_id not in reapplied:
                            reapplied.add(event.customer_id)
                            application = result.applications[event.customer_id]
                            again = f"app_{run_id}_again_{len(reapplied):04d}"
                            pending.append(("apply", application.model_copy(update={"application_id": again, "correlation_id": again})))
                elif isinstance(event, WindowClosed) and event.trigger == "overdue" and event.customer_id in missing:
                    result.overdue_closures.setdefault(event.customer_id, event)
                elif isinstance(event, WindowOpened | WindowClosed) and event.application_id.startswith(f"app_{run_id}_again_"):
                    if event.customer_id not in result.again:
                        result.again[event.customer_id] = event
                        progress.advance(waiting)
                elif isinstance(event, RepaymentApplied) and event.repayment_id.startswith(f"rp_{run_id}_early_"):
                    result.early.setdefault(event.customer_id, event)
                elif isinstance(event, NotificationSent) and event.about == "loan" and event.channel == "inbox":
                    result.loan_notices.setdefault(str(event.notification_id), event)

        async with TopicReader(settings, watched, start=start) as reader:
            deadline = time.monotonic() + 240
            while not result._fell_due and time.monotonic() < deadline:
                await reader.until(lambda _: bool(pending) or result._fell_due, timeout_s=2, on_batch=on_batch)
                while pending:
                    kind, event = pending.pop(0)
                    topic = topics.lending_requests if kind == "repay" else topics.applications
                    await (await publisher.send(topic, event))  # type: ignore[arg-type]
            await reader.until(lambda _: False, timeout_s=3, on_batch=on_batch)  # the notices of the last steps
    result.due_seconds = time.monotonic() - began


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
    if result.loans:
        _loans_summary(console, result)


def _loans_summary(console: Console, result: DemoResult) -> None:
    loans = list(result.loans.values())
    table = Table(title="Loans booked (a testing policy: a day is a second, an instalment falls due every 40)")
    for name in ("term", "loans", "principal CNY", "scheduled interest CNY"):
        table.add_column(name, justify="right")
    for term, group in sorted(Counter(loan.term_months for loan in loans).items()):
        chosen = [loan for loan in loans if loan.term_months == term]
        table.add_row(str(term), str(group), f"{sum(x.principal_fen for x in chosen) / 100:,.0f}", f"{sum(x.total_interest_fen for x in chosen) / 100:,.2f}")
    console.print(table)
    steps = Counter(0 if isinstance(s, InstalmentDueSoon) else s.step for s in result.steps.values())
    names = {0: "reminders", 1: "missed (1 day past due)"}
    console.print("due-date notices: " + ", ".join(f"{names.get(k, f'{k} days past due')} {v}" for k, v in sorted(steps.items())))
    for kind in ("loan_booked", "instalment_overdue", "overdue_cured"):
        notice = next((n for n in result.loan_notices.values() if n.outcome == kind and (kind != "instalment_overdue" or "missed" in n.title or "逾期" in n.title)), None)
        if notice is not None:
            console.print(Panel(notice.body, title=f"{notice.title}  [{notice.locale}, {notice.outcome}]", expand=False))
    again = [d for d in result.again.values() if isinstance(d, WindowClosed) and d.reason == "own_overdue"]
    refused = sum(1 for o in result.outcomes.values() if isinstance(o, DrawdownRefused) and o.reason == "term_not_offered")
    credited = sum(r.credit_fen for r in result.early.values()) / 100
    console.print(
        f"{len(loans)} loans booked ({refused} drawdowns refused a term not offered); {len(result.early)} borrowers repaid everything "
        f"early (CNY {credited:,.2f} paid beyond it, kept as their credit); {len(result.missing)} loans missed their first instalment -> "
        f"{len(result.overdue_closures)} windows closed (credit, own_overdue); {len(result.cures)} cured, "
        f"{len(again)} of their applications since closed by our own record, in {result.due_seconds:.1f} s"
    )
    story = next((c for c in result.overdue_closures if c in result.cures and c in result.again), None)
    if story is not None:
        closed, cure, later = result.overdue_closures[story], result.cures[story], result.again[story]
        console.print(
            f"e.g. {story}: window closed at {closed.occurred_at:%H:%M:%S} ({closed.category}, {closed.reason}); cured at "
            f"{cure.occurred_at:%H:%M:%S}, counting until {cure.counts_until:%H:%M:%S}; applied again: "
            + (f"closed ({later.reason}) until {later.retry_after:%H:%M:%S}" if isinstance(later, WindowClosed) else "opened")
        )


def run_demo(*, count: int | None = None, console: Console | None = None) -> DemoResult:
    console = console or Console()
    settings = Settings()
    began = time.monotonic()
    LocalPlatform(settings, say=lambda line: console.print(line, highlight=False)).up()
    asyncio.run(ensure_topics(settings))
    run_id = time.strftime("%Y%m%d%H%M%S") + uuid.uuid4().hex[:4]
    policy = loans_policy(settings, settings.home / "demo" / "loans-policy.yaml")
    lending = load_policy(policy).lending
    console.print(
        f"the fleet runs a testing policy ({policy}): a day lasts {lending.day_length / timedelta(seconds=1):g} s, an instalment "
        f"falls due every {lending.instalment_interval}; a production fleet refuses it"
    )
    env = {k: v for k, v in os.environ.items() if k.startswith(("CW_", "KAFKA_", "REDIS_"))} | {"CW_POLICY_PATH": str(policy)}
    fleet = Fleet(env=env, log_dir=settings.home / "logs" / "demo")
    console.print(f"starting scoring, policy and notification as separate processes (logs in {fleet.log_dir})")
    with fleet:
        columns = (TextColumn("{task.description:<26}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            result = asyncio.run(_publish_and_follow(settings, run_id, count, progress))
            asyncio.run(_draw_and_follow(settings, run_id, result, progress))
            asyncio.run(_fall_due(settings, run_id, result, progress))
        for proc in fleet.exited():
            console.print(f"[red]{proc.name} exited[/]:\n{fleet.tail(proc.name)}")
    _summary(console, result)
    console.print(f"demo took {time.monotonic() - began:.1f} s in all")
    return result
