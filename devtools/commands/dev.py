"""`creditwindow dev up | down | status`: the local platform (a real Kafka broker and Redis on 127.0.0.1)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from creditwindow.terminal import JsonOption, console, fail
from shared.settings import Settings

__all__ = ["app"]

app = typer.Typer(help="The local platform: a real Kafka broker (KRaft) and Redis on 127.0.0.1.", no_args_is_help=True)


def _platform(secure: bool | None = None):  # type: ignore[no-untyped-def]
    from devtools.platform import LocalPlatform

    return LocalPlatform(Settings(), say=lambda line: console.print(line, highlight=False, markup=False), secure=secure)


@app.command("up")
def up(
    secure: Annotated[
        bool,
        typer.Option(
            "--secure",
            help="A broker that asks who is calling: SASL_SSL (SCRAM-SHA-512, TLS), StandardAuthorizer and the "
            "fleet's ACLs, a principal per service and the operator. Once formatted so, it stays so.",
        ),
    ] = False,
) -> None:
    """Start Kafka and Redis (idempotent), wait until they answer, create the topics (and ACLs)."""
    from devtools.platform import PlatformError

    try:
        _platform(secure=True if secure else None).up()
    except PlatformError as exc:
        fail(str(exc))


@app.command("down")
def down() -> None:
    """Stop the local Kafka and Redis (idempotent)."""
    _platform().down()


@app.command("redis-memory")
def redis_memory(
    customers: Annotated[int, typer.Option(help="Customers to decide and tell, one application each.", min=1_000, max=2_000_000)] = 100_000,
    doc: Annotated[Path | None, typer.Option(help="Write the result into this page (between its markers).")] = None,
    as_json: JsonOption = False,
) -> None:
    """How much Redis the book and the ledger take per 100,000 customers, measured on the local Redis."""
    from devtools.redis_memory import run, section, write_section

    report = run(Settings(), customers)
    if doc is not None:
        write_section(report, doc)
    if as_json:
        print(json.dumps({**asdict(report), "mib_per_100k": {"all": report.per_100k(report.all_bytes), "kept": report.per_100k(report.kept_bytes)}}))
    else:
        console.print(section(report), highlight=False)


@app.command("status")
def status(as_json: JsonOption = False) -> None:
    """Where each part of the platform runs and whether it answers."""
    components = _platform().status()
    if as_json:
        print(json.dumps([asdict(c) for c in components]))  # slotted dataclasses: no __dict__
    else:
        table = Table("part", "address", "answers", "pid", "")
        for c in components:
            table.add_row(c.name, c.address, "[green]yes[/]" if c.running else "[red]no[/]", str(c.pid or "-"), c.detail)
        console.print(table)
    if not all(c.running for c in components):
        raise typer.Exit(1)
