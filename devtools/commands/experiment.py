"""`creditwindow experiment pacing`: offline experiments on the German Credit data.

`pacing` replays the 1,000 applications in shuffled orders through first come, first served and
through pacing against the period's forecast demand (issue 16: the forecast comes from an earlier
period, a bootstrap resample of the rows, never from the order replayed), checks the issue's
targets, and writes docs/pacing.md and its plots. matplotlib is imported only when plots are
written, so mounting this app costs the CLI nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from devtools.experiments.pacing.experiment import Experiment, run_experiment, share_key, slack_settings, summary
from devtools.experiments.pacing.plots import write_plots
from devtools.experiments.pacing.report import write_doc
from devtools.experiments.pacing.simulation import (
    DEFAULT_POINTS,
    DEFAULT_SEED,
    DEFAULT_SHARES,
    DEFAULT_SHUFFLES,
    DEFAULT_SLACKS,
    METRICS,
    RULES,
    score_cases,
)
from shared.settings import REPO_ROOT, Settings

__all__ = ["app"]

app = typer.Typer(help="Offline experiments on the German Credit applications.", no_args_is_help=True)
err = Console(stderr=True)
SHORT_LABELS = {"fcfs": "FCFS", "pacing": "pacing", "tuned": "tuned"}


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
    for level in experiment.levels:
        kind = "cannot bind" if level.share >= 1 else "tight"
        table = Table(title=f"budget share {level.share:g} ({kind}): mean over {experiment.shuffles} shuffles")
        table.add_column("metric", no_wrap=True)
        for header in (*(SHORT_LABELS[r] for r in RULES), "hindsight", "pacing − FCFS ± 2 SE", "pacing ahead"):
            table.add_column(header, justify="right")
        for metric in METRICS:
            diff = level.difference("pacing", metric)
            cells = [_cell(metric, level.spread(rule, metric).mean) for rule in RULES]
            change = f"{_cell(metric, diff.mean, signed=True)} ± {_cell(metric, 2 * diff.se)}"
            table.add_row(metric, *cells, _cell(metric, level.hindsight.metric(metric)), change, f"{diff.wins}/{diff.n}")
        tables.append(table)
    return tables


def _targets_table(experiment: Experiment) -> Table:
    table = Table(title=f"the issue's targets: policy pacing (slack {experiment.slack:g}) against FCFS, reported orders")
    for header in ("budget share", "uplift vs FCFS", "target", "met", f"tuned (slack {experiment.tuned_slack:g})", "hindsight"):
        table.add_column(header, justify="right")
    targets = experiment.targets()
    for level in experiment.levels:
        t = targets[share_key(level.share)]
        table.add_row(
            f"{level.share:g}", f"{t['uplift']:+.2%}", f"≥ {t['target']:+.0%}", "yes" if t["met"] else "[red]no[/]",
            f"{level.uplift('tuned'):+.2%}", f"{level.hindsight_uplift:+.2%}",
        )  # fmt: skip
    return table


@app.command()
def pacing(
    shuffles: Annotated[
        int, typer.Option("--shuffles", min=1, max=10_000, help="Reported shuffled arrival orders.")
    ] = DEFAULT_SHUFFLES,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the arrival orders and forecasts (tuning uses others of it).")
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
        typer.Option("--tuning-shuffles", min=1, max=10_000, help="Orders per slack tried (default: --shuffles)."),
    ] = None,
    slack: Annotated[
        list[float] | None,
        typer.Option(
            "--slack",
            min=-0.5,
            max=2.0,
            help="A slack for tuning to try; repeat for a grid. Default: "
            f"{', '.join(f'{s:g}' for s in DEFAULT_SLACKS)} (and the policy's own).",
        ),
    ] = None,
    points: Annotated[
        int, typer.Option("--points", min=1, max=500, help="Points of each forecast demand curve.")
    ] = DEFAULT_POINTS,
    out: Annotated[Path, typer.Option("--out", help="Docs directory: pacing.md and img/pacing*.png.")] = REPO_ROOT
    / "docs",
    docs: Annotated[bool, typer.Option("--docs/--no-docs", help="Write the document and plots.")] = True,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 unless every target is met and no budget was overspent.")
    ] = False,
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
    """First come, first served against pacing on the period's forecast demand, over seeded shuffles of the German Credit applications."""
    from services.policy.control.document import PolicyError, load_policy
    from services.scoring.scorecard import InvalidArtifact, Scorecard

    settings = Settings()
    try:
        policy = load_policy(policy_path or settings.policy_path)
        scorecard = Scorecard.load(model or settings.model_path)
    except (OSError, PolicyError, InvalidArtifact) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    shares = tuple(budget_share) if budget_share else DEFAULT_SHARES
    slacks = tuple(slack) if slack else DEFAULT_SLACKS
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
        scoring = progress.add_task("scoring the German Credit applications", total=None)
        cases = score_cases(scorecard)
        progress.update(scoring, total=1, completed=1)
        tasks = {
            "tune": progress.add_task(
                f"tuning the slack ({tuning_orders} shuffles each)", total=len(slack_settings(slacks, policy.pacing))
            ),
            "test": progress.add_task("reported shuffles (each budget share)", total=shuffles * len(set(shares))),
        }
        experiment = run_experiment(
            cases,
            policy,
            model_id=scorecard.model_id,
            shuffles=shuffles,
            seed=seed,
            shares=shares,
            tuning_shuffles=tuning_orders,
            slacks=slacks,
            points=points,
            on_step=lambda phase: progress.advance(tasks[phase]),
        )
    result = summary(experiment)
    if docs:
        images = write_plots(experiment, out / "img")
        result["docs"] = {
            "doc": str(write_doc(experiment, out, images)),
            **{name: str(p) for name, p in images.items()},
        }
    passed = result["targets"]["met"] and not result["budget_overspent"]
    if not as_json:
        console = Console()
        for table in _tables(experiment):
            console.print(table)
        console.print(_targets_table(experiment))
        console.print(
            f"budget overspent: {'yes' if result['budget_overspent'] else 'no'} "
            f"(the most any run took of any one budget: {experiment.most_used:.2%})",
            highlight=False,
        )
        console.print("targets met" if result["targets"]["met"] else "[red]targets NOT met[/]")
        if docs:
            console.print(f"wrote {result['docs']['doc']}")
    else:
        typer.echo(json.dumps(result, sort_keys=True))
    if check and not passed:
        raise typer.Exit(1)


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

