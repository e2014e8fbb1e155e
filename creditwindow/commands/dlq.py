"""`creditwindow dlq list | show | replay`: the records the services refused, and giving them another go.

A replay re-publishes the original bytes, key and headers to the topic they came from, with one
more header, `replay_of` (the dead letter's id). That header is how a replay happens once: before
publishing, the source topics are read (from the dead letters' time on) and letters already
replayed are skipped. Selection and planning are pure functions; the commands read and publish.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.table import Table

from creditwindow.terminal import JsonOption, console, fail, reach
from shared.contracts import DeadLetter
from shared.messaging.topic_io import Publisher, ReadRecord, offsets_at, read_to_end
from shared.settings import Settings
from shared.wire import REPLAY_HEADER

__all__ = ["LetterFilter", "ReplayPlan", "app", "payload_text", "plan_replay", "replay_headers", "replayed_ids", "select_letters"]

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
    """What a replay will publish, and what it leaves alone and why."""

    replay: list[DeadLetter] = field(default_factory=list)
    skipped: list[tuple[DeadLetter, str]] = field(default_factory=list)


def plan_replay(
    selected: Sequence[DeadLetter], replayed: dict[str, str], fleet_topics: Iterable[str], *, named: bool = False
) -> ReplayPlan:
    """Replay each selected letter once, only to a topic of this fleet, only when its bytes were kept whole.

    A letter left by a replay that failed again is the same record once more: it is replayed only
    when named by id (`named`), not by `--all` or a filter.
    """
    allowed = set(fleet_topics)
    plan = ReplayPlan()
    for letter in selected:
        key = str(letter.event_id)
        if key in replayed:
            plan.skipped.append((letter, f"already replayed to {replayed[key]}"))
        elif letter.replayed_from and not named:
            plan.skipped.append((letter, f"a replay of {letter.replayed_from[:8]} that failed again (name it to replay it)"))
        elif letter.payload_truncated:
            plan.skipped.append((letter, "its payload was truncated when it was dead-lettered"))
        elif letter.source_topic not in allowed:
            plan.skipped.append((letter, f"{letter.source_topic} is not a topic of this fleet (namespace?)"))
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
    """Re-publish dead letters to their source topic, once each (a letter already replayed is skipped)."""
    settings = Settings()
    wanted = _filter(letter_ids, source, error_type, failed_by)
    if wanted.empty and not replay_all:
        fail("name the dead letters to replay (ids), or use --all, optionally with --source / --error-type / --failed-by")

    async def run() -> tuple[ReplayPlan, list[str]]:
        selected = select_letters(await _letters(settings), wanted)
        replayed = await _replays(settings, selected) if selected else {}
        plan = plan_replay(selected, replayed, settings.topics.all(), named=bool(wanted.ids))
        published: list[str] = []
        if plan.replay and not dry_run:
            async with Publisher(settings) as publisher:
                for letter in plan.replay:
                    value = base64.b64decode(letter.payload_b64)
                    key = letter.source_key.encode() if letter.source_key is not None else None
                    metadata = await (await publisher.send_raw(letter.source_topic, value, key=key, headers=replay_headers(letter)))
                    published.append(f"{metadata.topic}[{metadata.partition}]@{metadata.offset}")
        return plan, published

    try:
        plan, published = reach(run, settings)
    except LookupError as exc:
        fail(str(exc))
    if as_json:
        body = {
            "replayed": [{"id": str(letter.event_id), "to": to} for letter, to in zip(plan.replay, published, strict=False)],
            "would_replay": [str(letter.event_id) for letter in plan.replay] if dry_run else [],
            "skipped": [{"id": str(letter.event_id), "why": why} for letter, why in plan.skipped],
        }
        print(json.dumps(body))
        return
    for letter, to in zip(plan.replay, published, strict=False):
        console.print(f"[green]replayed[/] {str(letter.event_id)[:8]} -> {to}", highlight=False)
    if dry_run:
        for letter in plan.replay:
            console.print(f"would replay {str(letter.event_id)[:8]} -> {letter.source_topic}", highlight=False)
    for letter, why in plan.skipped:
        console.print(f"[yellow]skipped[/] {str(letter.event_id)[:8]}: {why}", highlight=False)
    if not plan.replay and not plan.skipped:
        console.print("no dead letter matches")
