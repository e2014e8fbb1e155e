"""`creditwindow topics list | check | migrate`: the fleet's topics, from the one list (shared/contracts/topics.py).

`list` says what each topic carries and who writes and reads it (the principals table); `check`
compares the topics on the broker with what the settings ask for; `migrate` reads the retired mixed
topics once as history (docs/operations.md, "Splitting requests from results").
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from creditwindow.hmac_history import old_ring_refusal, read_old_ring
from creditwindow.split_migration import Part, SplitPlan, copied_already, history_headers, plan_split, position
from creditwindow.terminal import JsonOption, console, fail, reach
from services.policy.windows.adapters.redis_book import RedisBook
from services.policy.windows.model import Balance
from shared.contracts import OperatorAction
from shared.contracts.principals import TOPIC_ACCESS
from shared.contracts.topics import CATALOGUE
from shared.messaging import check_topics, topic_partitions
from shared.messaging.topic_io import Publisher, read_to_end
from shared.redis_connection import make_redis
from shared.settings import Settings

__all__ = ["app"]

app = typer.Typer(help="The fleet's topics on the broker.", no_args_is_help=True)


@app.command("list")
def list_topics(as_json: JsonOption = False) -> None:
    """Every topic: its kind (request, result, control, deadletter, retired), the events it carries,
    who writes it and who reads it, and whether it is kept forever."""
    settings = Settings()
    access = {row.topic: row for row in TOPIC_ACCESS}
    rows = [
        {
            "topic": getattr(settings.topics, entry.attribute),
            "name": entry.short,
            "kind": entry.kind,
            "events": list(entry.event_types),
            "writers": sorted(access[entry.attribute].writers),
            "readers": sorted(access[entry.attribute].readers),
            "kept_forever": entry.kept_forever,
            "about": entry.about,
        }
        for entry in CATALOGUE
    ]
    if as_json:
        print(json.dumps(rows))
        return
    table = Table("topic", "kind", "events", "written by", "read by", "kept", title=f"{len(rows)} topics")
    for row in rows:
        table.add_row(
            row["topic"], row["kind"], ", ".join(row["events"]), ", ".join(row["writers"]) or "nobody", ", ".join(row["readers"]),
            "forever" if row["kept_forever"] else f"{settings.topic_retention_ms // 86_400_000} days",
        )  # fmt: skip
    console.print(table)


@app.command("check")
def check(as_json: JsonOption = False) -> None:
    """Compare each topic with the settings (partitions, replication factor, retention, cleanup policy,
    min.insync.replicas, unclean leader election); exit 1 when any differs or is missing."""
    settings = Settings()
    differences = reach(lambda: check_topics(settings), settings)
    if as_json:
        print(json.dumps([asdict(d) for d in differences]))
    elif not differences:
        console.print(
            f"every topic as the settings ask: {settings.topic_partitions} partitions, replication factor "
            f"{settings.topic_replication_factor}, min.insync.replicas {settings.min_insync_replicas}, "
            "unclean leader election off"
        )
    else:
        table = Table("topic", "setting", "on the broker", "the settings want", title="topics that differ")
        for d in differences:
            table.add_row(d.topic, d.what, d.found, d.wanted)
        console.print(table)
    if differences:
        raise typer.Exit(1)


async def _live_balances(settings: Settings) -> dict[str, Balance]:
    """The live book's balances: what the history's lending results are checked against."""
    redis = make_redis(settings, socket_timeout=None, connect_timeout=3.0)
    try:
        book = RedisBook(redis, settings.redis_prefix)
        if await book.guard.current() is None:
            raise LookupError("no live book in Redis to check the lending results against: migrate before anything rebuilds it")
        return dict((await book.snapshot()).balances)
    finally:
        await redis.aclose()


async def _migrate(settings: Settings, part: Part, *, copy: bool, hmac_ring: Mapping[str, bytes]) -> SplitPlan:
    topics = settings.topics
    retired = [topics.retired_drawdowns, topics.retired_reviews]
    if not any((await topic_partitions(settings, retired)).values()):
        raise LookupError(f"neither {retired[0]} nor {retired[1]} exists: a fleet installed after the split has no history to migrate")
    destinations = [topics.lending_results, topics.review_results] if part == "results" else [topics.operator_actions]
    history = await read_to_end(settings, retired)
    copied = copied_already(await read_to_end(settings, destinations))
    namespace = settings.topic_namespace

    def verifies(action: OperatorAction) -> str | None:
        # The retired topics hold only what the fleet of before operators' keys wrote: its actions are
        # vouched for by the old shared HMAC ring, given as a file on the operator's machine, never by
        # the fleet's public ring (which refuses every HMAC signature).
        return old_ring_refusal(hmac_ring, action, namespace)

    balances = await _live_balances(settings) if part == "results" else None
    plan = plan_split(part, history, topics, copied=copied, verifies=verifies, balances=balances)
    if copy and plan.copies:
        async with Publisher(settings) as publisher:
            futures = [await publisher.send_raw(to, r.value or b"", key=r.key, headers=history_headers(r)) for r, to in plan.copies]
            await asyncio.gather(*futures)
    return plan


@app.command("migrate")
def migrate(
    part: Annotated[str, typer.Argument(help="results: the policy's results (run as the policy service's principal); actions: the operators' signed actions (run as the operators').")],
    yes: Annotated[bool, typer.Option("--yes", help="Copy (without it: say what would be copied, and what is refused and why).")] = False,
    hmac_ring: Annotated[
        Path | None,
        typer.Option("--hmac-ring", help='The old fleet\'s ring, JSON {"key id": "key"} as CW_POLICY_SIGNING_KEYS held it: what vouches for its operators\' actions.'),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Read the retired mixed topics (credit.drawdowns, credit.reviews) once as history: copy each
    result and signed action the fleet vouches for to the topic only its writer writes, marked
    `migrated_from`; leave the requests where they are. The old fleet's operator actions (and the
    reviews they concluded) are vouched for by its HMAC ring (--hmac-ring); `keys migrate` then signs
    the suspensions in force again with an operator's key. Run again, it copies nothing twice. Exit 1
    when the history holds records it refuses to copy (look at them)."""
    if part not in ("results", "actions"):
        fail("say what to migrate: `results` (as the policy service's principal) or `actions` (as the operators')")
    settings = Settings()
    try:
        ring = read_old_ring(hmac_ring) if hmac_ring is not None else {}
    except (OSError, ValueError) as exc:
        fail(str(exc))
    try:
        plan = reach(lambda: _migrate(settings, part, copy=yes, hmac_ring=ring), settings)  # type: ignore[arg-type]
    except LookupError as exc:
        fail(str(exc))
    copies = Counter(to for _, to in plan.copies)
    if as_json:
        print(json.dumps({
            "part": part, "copied" if yes else "would_copy": dict(copies), "already_copied": plan.already, "left": dict(plan.left),
            "refused": [{"at": position(record), "why": why} for record, why in plan.refused],
        }))  # fmt: skip
    else:
        verb = "copied" if yes else "would copy"
        for to, count in sorted(copies.items()):
            console.print(f"[green]{verb}[/] {count} to {to}", highlight=False)
        if plan.already:
            console.print(f"{plan.already} copied by an earlier run", highlight=False)
        if plan.left:
            console.print("left where they are (answered before the split): " + ", ".join(f"{n} {t}" for t, n in sorted(plan.left.items())), highlight=False)
        for record, why in plan.refused:
            console.print(f"[red]refused[/] {position(record)}: {escape(why)}", highlight=False)
        if not yes and plan.copies:
            console.print("nothing copied yet: run again with --yes")
    if plan.refused:
        raise typer.Exit(1)
