"""`creditwindow dlq list | show | replay`: the records the services refused, and giving them another go.

A dead letter never becomes a result. A replay re-publishes the original bytes, key and headers only
to the request topic they came from (applications, lending requests, review requests: what upstream
apps write), with one more header, `replay_of` (the dead letter's id); and only an event that belongs
there. A letter from a result topic (or a control, or a retired topic) is refused with how the fleet
re-derives what it held, whatever the letter says: a service that can write dead letters cannot aim
one at `credit.windows`. The one kind of letter from a result topic that is acted on is a webhook
given up: its delivery is queued again once, built from the decision the letter points at on the
log, never from the letter's bytes (services/notification/redelivery.py).

The `replay_of` header is how a replay happens once: before publishing, the source topics are read
(from the dead letters' time on) and letters already replayed are skipped; a webhook's queue
remembers the letter. Selection and planning are pure functions; the commands read and publish.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from creditwindow.terminal import JsonOption, console, fail, reach
from services.notification.ports import WebhookDelivery
from services.notification.redelivery import GIVEN_UP, redelivery
from services.notification.redis_webhooks import RedisWebhookQueue
from shared.contracts import EVENT_TYPES, DeadLetter, Topics
from shared.contracts.topics import CONTROL, DEADLETTER, REQUEST, RESULT, RETIRED, TopicEntry, homes_of
from shared.messaging.topic_io import Publisher, ReadRecord, offsets_at, read_at, read_to_end
from shared.redis_connection import make_redis
from shared.settings import Settings
from shared.wire import REPLAY_HEADER

__all__ = ["LetterFilter", "ReplayPlan", "app", "payload_text", "plan_replay", "rederived", "replay_headers", "replayed_ids", "select_letters"]

app = typer.Typer(help="Dead letters: list, show and replay (once) what the services refused.", no_args_is_help=True)


@dataclass(frozen=True, slots=True)
class LetterFilter:
    """Which dead letters: by id prefix, or by source topic, error type and refusing service."""

    ids: tuple[str, ...] = ()
    source: str | None = None
    error_type: str | None = None
    failed_by: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.ids or self.source or self.error_type or self.failed_by)


def select_letters(letters: Iterable[DeadLetter], wanted: LetterFilter) -> list[DeadLetter]:
    """Distinct letters (first copy of each id) matching the filter, oldest first.

    An id may be abbreviated to a unique prefix; a prefix matching several letters is an error.
    """
    distinct: dict[str, DeadLetter] = {}
    for letter in letters:
        distinct.setdefault(str(letter.event_id), letter)
    chosen = list(distinct.values())
    if wanted.ids:
        picked: dict[str, DeadLetter] = {}
        for prefix in wanted.ids:
            matches = [letter for key, letter in distinct.items() if key.startswith(prefix.lower())]
            if not matches:
                raise LookupError(f"no dead letter with id {prefix}")
            if len(matches) > 1:
                raise LookupError(f"id {prefix} matches {len(matches)} dead letters: give more characters")
            picked[str(matches[0].event_id)] = matches[0]
        chosen = list(picked.values())
    chosen = [
        letter
        for letter in chosen
        if (wanted.source is None or letter.source_topic == wanted.source)
        and (wanted.error_type is None or letter.error_type == wanted.error_type)
        and (wanted.failed_by is None or letter.failed_by == wanted.failed_by)
    ]
    return sorted(chosen, key=lambda letter: letter.occurred_at)


def replayed_ids(records: Iterable[ReadRecord]) -> dict[str, str]:
    """Dead letter id -> where its replay was published, from the `replay_of` header of source records."""
    found: dict[str, str] = {}
    for item in records:
        for key, value in item.record.headers or ():
            if key == REPLAY_HEADER:
                letter = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                found.setdefault(letter, f"{item.record.topic}[{item.record.partition}]@{item.record.offset}")
    return found


@dataclass(slots=True)
class ReplayPlan:
    """What a replay will publish (back to request topics), which webhooks it will queue again, and
    what it leaves alone and why."""

    replay: list[DeadLetter] = field(default_factory=list)
    redeliver: list[DeadLetter] = field(default_factory=list)
    skipped: list[tuple[DeadLetter, str]] = field(default_factory=list)  # left alone (done already, or not whole)
    refused: list[tuple[DeadLetter, str]] = field(default_factory=list)  # never replayed: what to do instead


# How the fleet re-derives what a topic that is not a request topic holds: what the operator does instead.
_REDERIVED = {
    "scores": "the scoring service scores each application once: replay the application's own dead letter (from credit.applications), if it has one",
    "windows": "the policy service decides each scored application once (again by itself after an outage); "
    "the book is re-derived from the log with `creditwindow cache rebuild --yes`",
    "notifications": "the notification service tells each result once from its topic, and re-derives its own state from the log when it is lost",
    "lending_results": "the policy service answers each drawdown or repayment once: replay the request's dead letter "
    "(from credit.lending-requests), or the upstream app asks again with the same id and gets the first answer",
    "review_results": "the policy service answers each request for review and carries out each signed decision once: "
    "replay the request's dead letter (from credit.review-requests), or decide again with `creditwindow review decide`",
    "shadow_windows": "a shadow policy decides again when it runs again (`creditwindow run policy-shadow`)",
    "policy": "a policy update is signed by an operator: apply it again with `creditwindow policy apply`",
    "operator_actions": "an operator's action is signed: issue it again (`creditwindow review decide`, `customer suspend`, `customer lift`)",
}
_BY_KIND = {
    RESULT: "the service that owns the topic re-derives it from the requests that caused it",
    CONTROL: "a control is signed by an operator: issue it again",
    DEADLETTER: "a dead letter is never replayed as a dead letter",
    RETIRED: "nothing is written to a retired topic: its history is read once by `creditwindow topics migrate`",
}


def rederived(entry: TopicEntry) -> str:
    """Why a letter from a topic that is not a request topic is not republished, and what to do instead."""
    what = {RESULT: "results are re-derived by the fleet, never republished", CONTROL: "controls are signed, never republished"}
    head = f"{entry.base} is a {entry.kind} topic: a dead letter goes back only to the request topic it came from"
    return f"{head}; {what.get(entry.kind, 'nothing is republished there')}: {_REDERIVED.get(entry.attribute, _BY_KIND[entry.kind])}"


def _event_type(letter: DeadLetter) -> str | None:
    """The type the letter's payload says it is (its header, else its body), if it says."""
    if letter.headers.get("event_type"):
        return letter.headers["event_type"]
    try:
        body = json.loads(base64.b64decode(letter.payload_b64))
    except ValueError:
        return None
    return body.get("event_type") if isinstance(body, dict) and isinstance(body.get("event_type"), str) else None


def plan_replay(selected: Sequence[DeadLetter], replayed: dict[str, str], topics: Topics, *, named: bool = False) -> ReplayPlan:
    """Replay each selected letter once, only back to the request topic of this fleet it came from,
    only when its bytes were kept whole and only an event that belongs there; queue a webhook given
    up again from its decision (`redeliver`); refuse every other letter, saying how the fleet
    re-derives what it held.

    A letter left by a replay that failed again is the same record once more: it is replayed only
    when named by id (`named`), not by `--all` or a filter.
    """
    plan = ReplayPlan()
    for letter in selected:
        key = str(letter.event_id)
        entry = topics.entry(letter.source_topic)
        kind = _event_type(letter)
        if key in replayed:
            plan.skipped.append((letter, f"already replayed to {replayed[key]}"))
        elif letter.replayed_from and not named:
            plan.skipped.append((letter, f"a replay of {letter.replayed_from[:8]} that failed again (name it to replay it)"))
        elif letter.payload_truncated:
            plan.skipped.append((letter, "its payload was truncated when it was dead-lettered"))
        elif entry is None:
            plan.refused.append((letter, f"{letter.source_topic} is not a topic of this fleet (namespace?)"))
        elif entry.attribute == "windows" and letter.error_type == GIVEN_UP:
            plan.redeliver.append(letter)
        elif entry.kind != REQUEST:
            plan.refused.append((letter, rederived(entry)))
        elif kind in EVENT_TYPES and kind not in entry.event_types:
            plan.refused.append((letter, f"a {kind} does not belong on {entry.base} and is never sent there: it is written to {' or '.join(homes_of(kind))} by the fleet alone"))
        else:
            plan.replay.append(letter)
    return plan


def replay_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    """The original headers plus `replay_of`; a `replay_of` from an earlier replay is replaced."""
    headers = [(k, v.encode()) for k, v in letter.headers.items() if k != REPLAY_HEADER]
    return [*headers, (REPLAY_HEADER, str(letter.event_id).encode())]


def payload_text(letter: DeadLetter) -> str:
    """The original value for a person: pretty JSON when it is JSON, else text, else hex."""
    raw = base64.b64decode(letter.payload_b64)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "hex: " + raw.hex()
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


# --- reading --------------------------------------------------------------------------------------


async def _letters(settings: Settings) -> list[DeadLetter]:
    records = await read_to_end(settings, [settings.topics.deadletter])
    return [r.event for r in records if isinstance(r.event, DeadLetter)]


async def _replays(settings: Settings, letters: Sequence[DeadLetter]) -> dict[str, str]:
    """Replays already on the letters' source topics (read from the oldest letter's time on)."""
    topics = sorted({letter.source_topic for letter in letters} & set(settings.topics.all()))
    if not topics:
        return {}
    since_ms = int(min(letter.occurred_at for letter in letters).timestamp() * 1000)
    start = await offsets_at(settings, topics, since_ms)
    return replayed_ids(await read_to_end(settings, topics, start=start))


def _filter(ids: Sequence[str] | None, source: str | None, error_type: str | None, failed_by: str | None) -> LetterFilter:
    return LetterFilter(ids=tuple(ids or ()), source=source, error_type=error_type, failed_by=failed_by)


def _summary(letter: DeadLetter, replay: str | None) -> dict[str, Any]:
    return {
        "id": str(letter.event_id),
        "at": letter.occurred_at.isoformat(),
        "failed_by": letter.failed_by,
        "error_type": letter.error_type,
        "error": letter.error,
        "source": f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}",
        "key": letter.source_key,
        "replayed_to": replay,
        "replayed_from": letter.replayed_from,
    }


def _replay_cell(row: dict[str, Any]) -> str:
    if row["replayed_to"]:
        return "to " + str(row["replayed_to"]).split("credit.", 1)[-1]
    return f"replay of {str(row['replayed_from'])[:8]}" if row["replayed_from"] else "no"


SourceOption = Annotated[str | None, typer.Option("--source", help="Only letters from this topic (full name).")]
ErrorTypeOption = Annotated[str | None, typer.Option("--error-type", help="Only this error type, e.g. invalid, undecodable.")]
FailedByOption = Annotated[str | None, typer.Option("--failed-by", help="Only letters refused by this service.")]


@app.command("list")
def list_letters(source: SourceOption = None, error_type: ErrorTypeOption = None, failed_by: FailedByOption = None, as_json: JsonOption = False) -> None:
    """Every dead letter (once per refused record): when, who refused it, why, from where, and any replay."""
    settings = Settings()

    async def read() -> tuple[list[DeadLetter], dict[str, str]]:
        letters = select_letters(await _letters(settings), _filter(None, source, error_type, failed_by))
        return letters, (await _replays(settings, letters) if letters else {})

    letters, replays = reach(read, settings)
    rows = [_summary(letter, replays.get(str(letter.event_id))) for letter in letters]
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    table = Table("id", "at (UTC)", "failed by", "error type", "source", "key", "replayed", "error", title=f"{len(rows)} dead letter(s) on {settings.topics.deadletter}")
    for row in rows:
        table.add_row(
            row["id"][:8], row["at"][5:19].replace("T", " "), row["failed_by"], row["error_type"], row["source"].split("credit.", 1)[-1],
            row["key"] or "-", _replay_cell(row), row["error"][:120],
        )  # fmt: skip
    console.print(table)


@app.command("show")
def show(letter_id: Annotated[str, typer.Argument(help="A dead letter's id (a unique prefix is enough).")], as_json: JsonOption = False) -> None:
    """One dead letter in full: reason, source position, original headers and payload."""
    settings = Settings()

    async def read() -> tuple[DeadLetter, dict[str, str]]:
        (letter,) = select_letters(await _letters(settings), LetterFilter(ids=(letter_id,)))
        return letter, await _replays(settings, [letter])

    try:
        letter, replays = reach(read, settings)
    except LookupError as exc:
        fail(str(exc))
    summary = _summary(letter, replays.get(str(letter.event_id)))
    if as_json:
        print(json.dumps({**summary, "headers": letter.headers, "payload_truncated": letter.payload_truncated, "payload": payload_text(letter)}, ensure_ascii=False))
        return
    table = Table(show_header=False)
    for key, value in summary.items():
        table.add_row(key, "" if value is None else str(value))
    table.add_row("headers", json.dumps(letter.headers, ensure_ascii=False))
    table.add_row("payload truncated", str(letter.payload_truncated))
    console.print(table)
    console.print(payload_text(letter), highlight=False, markup=False)


async def _redeliver(settings: Settings, letters: Sequence[DeadLetter]) -> list[tuple[DeadLetter, str, str]]:
    """Queue each given-up webhook again from its decision on the log: (letter, what happened, and
    `queued`, `skipped` or `refused`). Each letter is checked against the log first: a letter that is
    not the record at its position is refused whatever the state of the queue."""
    done: list[tuple[DeadLetter, str, str]] = []
    deliveries: list[tuple[DeadLetter, WebhookDelivery]] = []
    now = settings.clock().now()
    for letter in letters:
        found = await read_at(settings, letter.source_topic, letter.source_partition, letter.source_offset)
        delivery = redelivery(letter, found.record if found else None, found.event if found else None, at=now)
        if isinstance(delivery, str):
            done.append((letter, f"not queued: {delivery}", "refused"))
        else:
            deliveries.append((letter, delivery))
    if not deliveries:
        return done
    redis = make_redis(settings, socket_timeout=None, connect_timeout=3.0)
    try:
        queue = RedisWebhookQueue(redis, settings.redis_prefix)
        generation = await queue.guard.current()
        if generation is None:
            lost = "the notification state is lost or being rebuilt (its rebuild queues every webhook still owed): try again when it is ready"
            return [*done, *((letter, lost, "skipped") for letter, _ in deliveries)]
        queue.guard.adopt(generation)
        for letter, delivery in deliveries:
            where = f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
            if await queue.requeued_for(str(letter.event_id)):
                done.append((letter, "already queued again for its partner", "skipped"))
            elif await queue.requeue([delivery]):
                done.append((letter, f"webhook queued again for partner {delivery.partner_id} from the decision at {where}", "queued"))
            else:
                done.append((letter, "not queued: its delivery is not given up (still pending, or delivered)", "skipped"))
        return done
    finally:
        await redis.aclose()


@app.command("replay")
def replay(
    letter_ids: Annotated[list[str] | None, typer.Argument(help="Dead letter ids (unique prefixes); or use --all / the filters.")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Every dead letter matching the filters.")] = False,
    source: SourceOption = None,
    error_type: ErrorTypeOption = None,
    failed_by: FailedByOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be replayed; publish nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Re-publish dead letters to the request topic they came from, once each (a letter already
    replayed is skipped); queue a webhook given up again; refuse letters from result topics, saying
    how the fleet re-derives them."""
    settings = Settings()
    wanted = _filter(letter_ids, source, error_type, failed_by)
    if wanted.empty and not replay_all:
        fail("name the dead letters to replay (ids), or use --all, optionally with --source / --error-type / --failed-by")

    async def run() -> tuple[ReplayPlan, list[str], list[tuple[DeadLetter, str, str]]]:
        selected = select_letters(await _letters(settings), wanted)
        replayed = await _replays(settings, selected) if selected else {}
        plan = plan_replay(selected, replayed, settings.topics, named=bool(wanted.ids))
        published: list[str] = []
        if plan.replay and not dry_run:
            async with Publisher(settings) as publisher:
                for letter in plan.replay:
                    value = base64.b64decode(letter.payload_b64)
                    key = letter.source_key.encode() if letter.source_key is not None else None
                    metadata = await (await publisher.send_raw(letter.source_topic, value, key=key, headers=replay_headers(letter)))
                    published.append(f"{metadata.topic}[{metadata.partition}]@{metadata.offset}")
        redelivered = await _redeliver(settings, plan.redeliver) if plan.redeliver and not dry_run else []
        return plan, published, redelivered

    try:
        plan, published, redelivered = reach(run, settings)
    except LookupError as exc:
        fail(str(exc))
    queued = [(letter, what) for letter, what, status in redelivered if status == "queued"]
    skipped = [*plan.skipped, *((letter, what) for letter, what, status in redelivered if status == "skipped")]
    refused = [*plan.refused, *((letter, what) for letter, what, status in redelivered if status == "refused")]
    if as_json:
        body = {
            "replayed": [{"id": str(letter.event_id), "to": to} for letter, to in zip(plan.replay, published, strict=False)],
            "redelivered": [{"id": str(letter.event_id), "what": what} for letter, what in queued],
            "would_replay": [str(letter.event_id) for letter in (*plan.replay, *plan.redeliver)] if dry_run else [],
            "skipped": [{"id": str(letter.event_id), "why": why} for letter, why in skipped],
            "refused": [{"id": str(letter.event_id), "why": why} for letter, why in refused],
        }
        print(json.dumps(body))
    else:
        for letter, to in zip(plan.replay, published, strict=False):
            console.print(f"[green]replayed[/] {str(letter.event_id)[:8]} -> {to}", highlight=False)
        for letter, what in queued:
            console.print(f"[green]redelivered[/] {str(letter.event_id)[:8]}: {escape(what)}", highlight=False)
        if dry_run:
            for letter in plan.replay:
                console.print(f"would replay {str(letter.event_id)[:8]} -> {letter.source_topic}", highlight=False)
            for letter in plan.redeliver:
                console.print(f"would queue the webhook of {str(letter.event_id)[:8]} again from its decision on {letter.source_topic}", highlight=False)
        for letter, why in skipped:
            console.print(f"[yellow]skipped[/] {str(letter.event_id)[:8]}: {escape(why)}", highlight=False)
        for letter, why in refused:
            console.print(f"[red]refused[/] {str(letter.event_id)[:8]}: {escape(why)}", highlight=False)
        if not (plan.replay or plan.redeliver or plan.skipped or plan.refused):
            console.print("no dead letter matches")
    if refused:
        raise typer.Exit(1)  # nothing of it was republished: say so to scripts too
