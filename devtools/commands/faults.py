"""`creditwindow faults`: applications published while services, the broker and Redis fail; then the books."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from creditwindow.terminal import JsonOption, console

__all__ = ["faults"]


def faults(
    applications: Annotated[int, typer.Option(help="Applications to publish.")] = 20_000,
    seconds: Annotated[float, typer.Option(help="How long publishing (and the faults) last.")] = 240.0,
    seed: Annotated[int, typer.Option(help="Seed of the input and of the fault moments.")] = 20261128,
    report: Annotated[Path, typer.Option(help="Where to write the markdown report.")] = Path("docs/reliability.md"),
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            help="On the local cluster (started if needed): kill -9 the broker leading most credit.scores partitions, "
            "the active controller and the Redis master (Sentinel promotes the replica), each restarted after; "
            "the report goes to its own section of the page.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Publish applications while killing services, the broker and Redis; then check the books."""
    from devtools.faults import FaultPlan, run_faults

    plan = FaultPlan(applications=applications, publish_seconds=seconds, seed=seed, cluster=cluster)
    result = run_faults(plan, console=console, report_path=report)
    if not as_json:
        where = "the local cluster" if cluster else "the local platform"
        table = Table("check", "result", title=f"fault suite on {where}: {applications:,} applications, {len(result.faults)} faults")
        for name, check in result.checks.items():
            table.add_row(name, "[green]pass[/]" if check["ok"] else f"[red]FAIL[/] {check}")
        console.print(table)
        console.print(f"report written to {report}")
    print(json.dumps(result.summary()))
    if not result.passed:
        raise typer.Exit(1)
