"""`creditwindow topics check`: are the fleet's topics on the broker what the settings ask for?"""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.table import Table

from creditwindow.terminal import JsonOption, console, reach
from shared.messaging import check_topics
from shared.settings import Settings

__all__ = ["app"]

app = typer.Typer(help="The fleet's topics on the broker.", no_args_is_help=True)


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
