"""`creditwindow bench`: decisions/s and latency of the fleet against a bare aiokafka relay, in the same run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from creditwindow.terminal import JsonOption, console, err

__all__ = ["bench"]


def bench(
    applications: Annotated[int, typer.Option(help="Applications in the as-fast-as-it-can phase.")] = 20_000,
    rates: Annotated[str, typer.Option(help="Fixed rates per second, comma separated.")] = "100,200,500",
    rate_seconds: Annotated[float, typer.Option(help="How long each fixed-rate phase lasts.")] = 20.0,
    drawdowns: Annotated[int, typer.Option(help="Drawdown requests in the drawdown phase (0: none).")] = 5_000,
    scaling: Annotated[bool, typer.Option(help="Also run two replicas of each service.")] = True,
    report: Annotated[Path, typer.Option(help="Where to write the markdown report.")] = Path("docs/benchmarks.md"),
    cluster: Annotated[
        bool,
        typer.Option(
            "--cluster",
            help="On the local cluster (started if needed): the fleet with and without WAIT for the Redis replica, "
            "then the relay; written as a section of the report.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Decisions/s and latency of the fleet against a bare aiokafka relay, in the same run."""
    from devtools.bench import BenchPlan, print_report, run_bench

    plan = BenchPlan(
        applications=applications,
        rates=tuple(int(r) for r in rates.split(",") if r.strip()),
        rate_seconds=rate_seconds,
        drawdowns=0 if cluster else drawdowns,
        scaling=scaling and not cluster,
        cluster=cluster,
    )
    result = run_bench(plan, console=err if as_json else console, report_path=report)
    if not as_json:
        print_report(result, console)
        console.print(f"report written to {report}")
    print(json.dumps(result.summary()))
