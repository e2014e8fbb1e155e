"""`creditwindow experiment pacing`: offline experiments on the German Credit data.

`pacing` replays the 1,000 applications in shuffled orders through first come, first served and
through the budget's shadow price (issue 4, item 5), and writes docs/pacing.md and its plots.
matplotlib is imported only when plots are written, so mounting this app costs the CLI nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from devtools.experiments.pacing.experiment import Experiment, grid_settings, run_experiment, summary
from devtools.experiments.pacing.plots import write_plots
from devtools.experiments.pacing.report import write_doc
from devtools.experiments.pacing.simulation import (
    DEFAULT_GRID,
    DEFAULT_SEED,
    DEFAULT_SHARES,
    DEFAULT_SHUFFLES,
    METRICS,
    RULES,
    score_cases,
)
from shared.settings import REPO_ROOT, Settings

__all__ = ["app"]

app = typer.Typer(help="Offline experiments on the German Credit applications.", no_args_is_help=True)
err = Console(stderr=True)
SHORT_LABELS = {"fcfs": "FCFS", "pacing": "pacing", "tuned": "tuned", "balanced": "balanced"}


@app.callback()
def experiments() -> None:
    """Offline experiments on the German Credit applications."""


def _cell(metric: str, value: float, *, signed: bool = False) -> str:
    sign = "+" if signed else ""
    if metric.endswith("_used"):
        return f"{value * 100:{sign}.1f}%"
    if metric.startswith("approved_"):
        return f"{value:{sign}.1f}"
    return f"{value:{sign},.0f}"


def _tables(experiment: Experiment) -> list[Table]:
    tables = []
    levels = [*experiment.levels, *([experiment.control] if experiment.control else [])]
    for level in levels:
        kind = "control, cannot bind" if level is experiment.control else "tight"
        table = Table(title=f"budget share {level.share:g} ({kind}): mean over {experiment.shuffles} shuffles")
        table.add_column("metric", no_wrap=True)
        for header in (*(SHORT_LABELS[r] for r in RULES), "pacing − FCFS ± 2 SE", "pacing ahead"):
            table.add_column(header, justify="right")
        for metric in METRICS:
            diff = level.difference("pacing", metric)
            cells = [_cell(metric, level.spread(rule, metric).mean) for rule in RULES]
            change = f"{_cell(metric, diff.mean, signed=True)} ± {_cell(metric, 2 * diff.se)}"
            table.add_row(metric, *cells, change, f"{diff.wins}/{diff.n}")
        tables.append(table)
    return tables


@app.command()
def pacing(
    shuffles: Annotated[
        int, typer.Option("--shuffles", min=1, max=10_000, help="Reported shuffled arrival orders.")
    ] = DEFAULT_SHUFFLES,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the arrival orders (tuning uses other orders of it).")
    ] = DEFAULT_SEED,
    budget_share: Annotated[
        list[float] | None,
        typer.Option(
            "--budget-share",
            min=0.01,
            max=1.0,
            help="Budget as a share of what every approvable applicant would take; repeat for a sweep. "
            f"Default: {', '.join(f'{s:g}' for s in DEFAULT_SHARES)}.",
        ),
    ] = None,
    tuning_shuffles: Annotated[
        int | None,
        typer.Option("--tuning-shuffles", min=1, max=10_000, help="Orders per grid point (default: --shuffles)."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Docs directory: pacing.md and img/pacing*.png.")] = REPO_ROOT
    / "docs",
    docs: Annotated[bool, typer.Option("--docs/--no-docs", help="Write the document and plots.")] = True,
    policy_path: Annotated[
        Path | None, typer.Option("--policy", help="Policy document (default: the configured one).")
    ] = None,
    model: Annotated[
        Path | None, typer.Option("--model", help="Scorecard artifact (default: the configured one).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only the summary, as one JSON object on the last line.")
    ] = False,
) -> None:
    """First come, first served against budget pacing, over seeded shuffles of the German Credit applications."""
    from services.policy.document import PolicyError, load_policy
    from services.scoring.scorecard import InvalidArtifact, Scorecard

    settings = Settings()
    try:
        policy = load_policy(policy_path or settings.policy_path)
        scorecard = Scorecard.load(model or settings.model_path)
    except (OSError, PolicyError, InvalidArtifact) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    shares = tuple(budget_share) if budget_share else DEFAULT_SHARES
    tuning_orders = tuning_shuffles or shuffles
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with progress:
        tasks = {
            "tune": progress.add_task(
                f"tuning grid ({tuning_orders} shuffles each)", total=len(grid_settings(DEFAULT_GRID, policy.pacing))
            ),
            "test": progress.add_task(
                "reported shuffles (each budget share and the control)", total=shuffles * (len(set(shares)) + 1)
            ),
        }
        experiment = run_experiment(
            score_cases(scorecard),
            policy,
            model_id=scorecard.model_id,
            shuffles=shuffles,
            seed=seed,
            shares=shares,
            tuning_shuffles=tuning_orders,
            on_step=lambda phase: progress.advance(tasks[phase]),
        )
    result = summary(experiment)
    if docs:
        images = write_plots(experiment, out / "img")
        result["docs"] = {
            "doc": str(write_doc(experiment, out, images)),
            **{name: str(p) for name, p in images.items()},
        }
    if not as_json:
        console = Console()
        for table in _tables(experiment):
            console.print(table)
        tuning = experiment.tuning
        console.print(
            f"tuning on {tuning.shuffles} tune shuffles, mean expected-profit uplift over FCFS at the tight budgets:"
        )
        for name, point in (("policy", tuning.policy_point), ("tuned", tuning.chosen), ("balanced", tuning.balanced)):
            control = (
                f", {point.control_uplift:+.2%} where the budget cannot bind"
                if point.control_uplift is not None
                else ""
            )
            console.print(
                f"  {name:<9} max_margin {point.max_margin:g}, steepness {point.steepness:g}: {point.mean_uplift:+.2%}{control}"
            )
        if docs:
            console.print(f"wrote {result['docs']['doc']}")
        return
    typer.echo(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    app()


@app.command("budget-shards")
def budget_shards(
    requests: Annotated[int, typer.Option(help="Requests in the seeded stream (limits 5,000-50,000 CNY).", min=100)] = 3_000,
    budget: Annotated[int, typer.Option(help="The segment's exposure budget, CNY.", min=10_000)] = 30_000_000,
    shards: Annotated[str, typer.Option(help="Shard counts, comma separated.")] = "4,16,64",
    seed: Annotated[int, typer.Option(help="Seed of the stream.")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print data as JSON.")] = False,
) -> None:
    """A segment's budget split into shards (static, or rebalancing by debit-then-credit transfers) against one counter."""
    from devtools.experiments.budget_shards.simulation import run

    rows = run(requests, budget, tuple(int(s) for s in shards.split(",") if s.strip()), seed)
    if as_json:
        print(json.dumps(rows))
        return
    table = Table(title=f"budget {budget:,} CNY, {requests:,} requests (seed {seed})")
    for column in ("name", "granted", "opened", "vs one counter", "answered differently", "transfers / 1000", "stranded while refusing"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["name"]), f"{row['granted']:,}", str(row["opened"]), f"{row['granted_vs_central_pct']}%", str(row["differs"]),
            str(row["transfers_per_1000_requests"]), f"{row['stranded']:,}",
        )  # fmt: skip
    Console().print(table)

