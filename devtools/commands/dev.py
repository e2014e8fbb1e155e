"""`creditwindow dev up | down | status`: the local platform (a real Kafka broker and Redis on 127.0.0.1),
or with `--cluster` the local cluster (three Kafka nodes, Redis with a replica and Sentinels)."""

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

ClusterOption = Annotated[
    bool,
    typer.Option(
        "--cluster",
        help="The local cluster instead: three KRaft nodes (broker + controller), Redis with a replica and three "
        "Sentinels, replicated topics (see devtools/cluster.py).",
    ),
]


def _say(line: str) -> None:
    console.print(line, highlight=False, markup=False)


def _platform(secure: bool | None = None):  # type: ignore[no-untyped-def]
    from devtools.platform import LocalPlatform

    return LocalPlatform(Settings(), say=_say, secure=secure)


def _cluster():  # type: ignore[no-untyped-def]
    from devtools.cluster import LocalCluster

    return LocalCluster(Settings(), say=_say)


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
    cluster: ClusterOption = False,
) -> None:
    """Start Kafka and Redis (idempotent), wait until they answer, create the topics (and ACLs)."""
    from devtools.platform import PlatformError

    if secure and cluster:
        fail("--secure is for the single-node platform; the cluster runs PLAINTEXT on 127.0.0.1")
    try:
        if cluster:
            _cluster().up()
        else:
            _platform(secure=True if secure else None).up()
    except PlatformError as exc:
        fail(str(exc))


@app.command("down")
def down(cluster: ClusterOption = False) -> None:
    """Stop the local Kafka and Redis, and the local cluster if it runs (idempotent); `--cluster`: the cluster only."""
    if not cluster:
        _platform().down()
    local = _cluster()
    if cluster or local.running():
        local.down()


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


@app.command("budget-bench")
def budget_bench(
    seconds: Annotated[float, typer.Option(help="How long each mode runs.", min=1.0, max=60.0)] = 5.0,
    cluster: ClusterOption = False,
    doc: Annotated[Path | None, typer.Option(help="Write the result into this page (between its markers).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Budget reservations per second on one Redis (one hot segment key), and the ceiling that implies."""
    from devtools.budget_bench import run, section, write_section

    settings = _cluster().settings if cluster else Settings()
    report = run(settings, seconds)
    if doc is not None:
        write_section(report, doc)
    if as_json:
        print(json.dumps(report.as_dict()))
    else:
        console.print(section(report), highlight=False, markup=False)


@app.command("status")
def status(cluster: ClusterOption = False, as_json: JsonOption = False) -> None:
    """Where each part of the platform runs and whether it answers; `--cluster`: each node, the active
    controller, partition leaders per broker, the Redis master, and topics that differ from the settings."""
    if cluster:
        _cluster_status(as_json)
        return
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


def _cluster_status(as_json: bool) -> None:
    found = _cluster().status()
    if as_json:
        print(json.dumps({**asdict(found), "leaders": {str(k): v for k, v in found.leaders.items()}}))
    else:
        table = Table("part", "address", "answers", "pid", "")
        for c in found.parts:
            table.add_row(c.name, c.address, "[green]yes[/]" if c.running else "[red]no[/]", str(c.pid or "-"), c.detail)
        console.print(table)
        leaders = ", ".join(f"node {n}: {count}" for n, count in found.leaders.items()) or "none"
        console.print(
            f"active controller: {found.controller if found.controller is not None else 'none'}; "
            f"partition leaders per broker (fleet topics): {leaders}; without a leader: {found.leaderless}; "
            f"under-replicated: {found.under_replicated}; Redis master: {found.redis_master or 'none'}",
            highlight=False,
        )
        for difference in found.topic_differences:
            console.print(f"[yellow]topic differs:[/] {difference}", highlight=False)
    if not found.healthy:
        raise typer.Exit(1)
