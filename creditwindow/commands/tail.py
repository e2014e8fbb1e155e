"""`creditwindow tail TOPIC...`: the fleet's events, decoded, as a live table or JSON lines.

Reads without a consumer group (nothing changes for the services). Filtering and the one-line
summary of each event are pure functions; the command only reads and prints.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from creditwindow.terminal import JsonOption, console, fail, reach, resolve_topic
from shared.contracts import (
    ApplicationReceived,
    CustomerSuspended,
    DeadLetter,
    DecisionDelayed,
    Event,
    NotificationSent,
    PolicyUpdated,
    ReviewConcluded,
    ReviewDecided,
    ReviewOpened,
    ReviewRequested,
    ScoreComputed,
    SuspensionLifted,
    WindowClosed,
    WindowOpened,
)
from shared.contracts.topics import CATALOGUE
from shared.messaging.topic_io import ReadRecord, TopicReader, end_offsets
from shared.references import reference_of
from shared.settings import Settings

__all__ = ["TailFilter", "as_json_line", "customer_of", "summarise"]


REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class TailFilter:
    """Which records to show: all given criteria must match (an empty criterion matches everything)."""

    customers: frozenset[str] = field(default_factory=frozenset)
    event_types: frozenset[str] = field(default_factory=frozenset)  # lower case; "refused" for undecodable records
    categories: frozenset[str] = field(default_factory=frozenset)

    def matches(self, item: ReadRecord) -> bool:
        if self.customers and customer_of(item) not in self.customers:
            return False
        kind = item.event.event_type if item.event is not None else REFUSED
        if self.event_types and kind.lower() not in self.event_types:
            return False
        if self.categories:
            category = getattr(item.event, "category", None)
            if category is None and isinstance(item.event, WindowOpened):
                category = "opened"
            if category not in self.categories:
                return False
        return True


def customer_of(item: ReadRecord) -> str | None:
    """The customer an event is about: its `customer_id`, else the record's key."""
    customer = getattr(item.event, "customer_id", None)
    if customer:
        return str(customer)
    if isinstance(item.event, DeadLetter):
        return item.event.source_key
    return item.record.key.decode("utf-8", "replace") if item.record.key else None


def _money(value: float) -> str:
    return f"{value:,.0f}"


def summarise(event: Event) -> str:
    """One line that says what happened, for the table."""
    if isinstance(event, ApplicationReceived):
        f = event.facts
        return f"{f.segment} {f.region} via {f.channel}: asks {_money(f.requested_amount)}, income {_money(f.annual_income)}"
    if isinstance(event, ScoreComputed):
        if event.outcome != "scored":
            return f"unscorable: {event.failure or '-'}"
        return f"{event.points:.1f} points, grade {event.grade}, PD {event.pd:.3f}"
    if isinstance(event, WindowOpened):
        return (
            f"opened {_money(event.limit)} at {event.apr:.2%} APR, grade {event.grade}, bound by {event.basis.bound_by}, "
            f"until {event.valid_until:%Y-%m-%d} ({event.policy_version}, {event.trigger})"
        )
    if isinstance(event, WindowClosed):
        return f"closed: {event.category}/{event.reason} ({event.policy_version}, {event.trigger})"
    if isinstance(event, NotificationSent):
        told = event.outcome + (f" {event.category}" if event.category else "")
        return f"{event.channel} {event.locale}: {told}, ref {event.reference}"
    if isinstance(event, PolicyUpdated):
        return f"{event.policy_name}@{event.version} by {event.issued_by} (key {event.key_id})"
    if isinstance(event, DeadLetter):
        return (
            f"{event.failed_by} refused {event.source_topic}[{event.source_partition}]@{event.source_offset}: "
            f"{event.error_type}: {event.error[:120]}"
        )
    return _summarise_customer_side(event)


def _summarise_customer_side(event: Event) -> str:
    """Reviews, suspensions and delay notices (issue 15)."""
    if isinstance(event, DecisionDelayed):
        return f"delayed since {event.waiting_since:%H:%M:%S} ({event.cause[:60]}), will be {reference_of(event.decision_id)}"
    if isinstance(event, ReviewRequested):
        return f"review asked of {event.reference}"
    if isinstance(event, ReviewOpened):
        return f"review of {event.reference} opened, answer by {event.respond_by:%Y-%m-%d}"
    if isinstance(event, ReviewDecided):
        return f"review of {event.reference}: {event.outcome}" + (f" {_money(event.limit)}" if event.limit else "") + f" by {event.issued_by} (key {event.key_id})"
    if isinstance(event, ReviewConcluded):
        return f"review of {event.reference} concluded: {event.outcome}" + (f", new {reference_of(event.new_decision_id)}" if event.new_decision_id else "")
    if isinstance(event, CustomerSuspended):
        return f"suspended ({event.reason}) until {event.until or 'lifted'} by {event.issued_by} (key {event.key_id})"
    if isinstance(event, SuspensionLifted):
        return f"suspension lifted by {event.issued_by} (key {event.key_id})"
    return event.event_type


def as_json_line(item: ReadRecord) -> str:
    """One JSON object per record: where it is, and the event (or why it could not be decoded)."""
    body: dict[str, Any] = {
        "topic": item.record.topic,
        "partition": item.record.partition,
        "offset": item.record.offset,
        "timestamp": datetime.fromtimestamp(item.timestamp_ms / 1000, UTC).isoformat(),
        "key": item.record.key.decode("utf-8", "replace") if item.record.key else None,
    }
    if item.event is not None:
        body["event_type"] = item.event.event_type
        body["event"] = item.event.model_dump(mode="json")
    else:
        assert item.refused is not None
        body["event_type"] = REFUSED
        body["refused"] = {"error_type": item.refused.error_type, "error": item.refused.error}
    return json.dumps(body, ensure_ascii=False)


def _table(header: bool) -> Table:
    table = Table(show_header=header, box=None, pad_edge=False, header_style="bold")
    table.add_column("time", width=8, no_wrap=True)
    table.add_column("where", min_width=12, no_wrap=True)
    table.add_column("event", min_width=12, no_wrap=True)
    table.add_column("customer", min_width=8, no_wrap=True)
    table.add_column("what", ratio=1)
    return table


def _where(item: ReadRecord) -> str:
    # the topic's last part is enough on screen: the namespace and `credit.` are the same on every row
    topic = item.record.topic.split("credit.", 1)[-1]
    return f"{topic}[{item.record.partition}]@{item.record.offset}"


def _row(table: Table, item: ReadRecord) -> None:
    stamp = datetime.fromtimestamp(item.timestamp_ms / 1000, UTC).strftime("%H:%M:%S")
    if item.event is None:
        assert item.refused is not None
        table.add_row(stamp, _where(item), f"[red]{REFUSED}[/]", customer_of(item) or "-", f"{item.refused.error_type}: {item.refused.error[:160]}")
        return
    colour = {"WindowOpened": "green", "WindowClosed": "red", "DeadLetter": "yellow"}.get(item.event.event_type, "cyan")
    table.add_row(stamp, _where(item), f"[{colour}]{item.event.event_type}[/]", customer_of(item) or "-", summarise(item.event))


async def _tail(
    settings: Settings, topics: Sequence[str], wanted: TailFilter, *, from_beginning: bool, follow: bool, limit: int | None, as_json: bool
) -> int:
    ends = await end_offsets(settings, topics)
    missing = [t for t in topics if not any(tp.topic == t for tp in ends)]
    if missing:
        raise LookupError(f"topic(s) {', '.join(missing)} do not exist yet (the services create them when they start)")
    start = None if from_beginning else ends
    shown = 0
    header = True
    async with TopicReader(settings, topics, start=start) as reader:
        while limit is None or shown < limit:
            batch = sorted(await reader.poll(timeout_ms=500), key=lambda r: r.timestamp_ms)
            table = _table(header)
            for item in batch:
                if not wanted.matches(item) or (limit is not None and shown >= limit):
                    continue
                shown += 1
                if as_json:
                    print(as_json_line(item), flush=True)
                else:
                    _row(table, item)
            if table.row_count:
                console.print(table, highlight=False)
                header = False
            if not follow and await reader.caught_up(ends):
                break
    return shown


def _split(values: Sequence[str] | None) -> frozenset[str]:
    return frozenset(v.strip() for value in values or () for v in value.split(",") if v.strip())


def tail(
    topics: Annotated[list[str], typer.Argument(help=f"Topics: {', '.join(e.short for e in CATALOGUE)} (or credit.*).")],
    customer: Annotated[list[str] | None, typer.Option("--customer", "-c", help="Only this customer (repeat or comma-separate).")] = None,
    event_type: Annotated[list[str] | None, typer.Option("--type", "-t", help="Only these event types, e.g. WindowClosed; `refused` for undecodable records.")] = None,
    category: Annotated[list[str] | None, typer.Option("--category", help="Only these categories: credit, strategy, system, regulatory, opened.")] = None,
    from_beginning: Annotated[bool, typer.Option("--from-beginning", help="Start at the beginning of the topics (default: only new events).")] = False,
    follow: Annotated[bool | None, typer.Option("--follow/--no-follow", "-f", help="Keep waiting for new events (default: follow unless --from-beginning).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="Stop after this many matching events.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Decoded events as a live table or JSON lines, filtered by customer, event type and category.

    Without --from-beginning, tail shows only events published from now on and follows them (like `tail -f`). With --from-beginning it shows what the topics hold and stops at their end, unless --follow is given too. Ctrl-C stops following.
    """
    settings = Settings()
    try:
        names = list(dict.fromkeys(resolve_topic(t, settings.topics) for t in topics))
    except ValueError as exc:
        fail(str(exc))
    wanted = TailFilter(
        customers=_split(customer),
        event_types=frozenset(t.lower() for t in _split(event_type)),
        categories=frozenset(c.lower() for c in _split(category)),
    )
    keep_following = (not from_beginning) if follow is None else follow
    began = time.monotonic()
    try:
        shown = reach(
            lambda: _tail(settings, names, wanted, from_beginning=from_beginning, follow=keep_following, limit=limit, as_json=as_json),
            settings,
        )
    except KeyboardInterrupt:
        return
    except LookupError as exc:
        fail(str(exc))
    if not as_json and not keep_following:
        console.print(f"[dim]{shown} event(s) from {', '.join(names)} in {time.monotonic() - began:.1f} s[/]", highlight=False)

