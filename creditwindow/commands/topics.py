"""`creditwindow topics list | check | migrate`: the fleet's topics, from the one list (shared/contracts/topics.py).

`list` says what each topic carries and who writes and reads it (the principals table); `check`
compares the topics on the broker with what the settings ask for; `migrate` reads the retired mixed
topics once as history (docs/operations.md, "Splitting requests from results").
"""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.table import Table

from creditwindow.terminal import JsonOption, console, reach
from shared.contracts.principals import TOPIC_ACCESS
from shared.contracts.topics import CATALOGUE
from shared.messaging import check_topics
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
