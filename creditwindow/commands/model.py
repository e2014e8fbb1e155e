"""`creditwindow model psi`: is the live score distribution drifting from the training one?

Training and cross-validation (`model train`, `model evaluate`) are offline tooling: the `modelling`
package adds them to this group when its extra is installed (`pip install -e ".[model]"`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from services.scoring.scorecard import DEFAULT_ARTIFACT

__all__ = ["app"]

app = typer.Typer(help="The credit scorecard: check score drift (train and evaluate with the model extra).", no_args_is_help=True)

ArtifactOption = Annotated[Path, typer.Option("--model", help="Scorecard artifact (JSON).")]


def _last_line(data: dict[str, object]) -> None:
    typer.echo(json.dumps(data, sort_keys=True))


@app.command()
def psi(
    scores: Annotated[
        str, typer.Option("--scores", help="File of scores, one per line, - for stdin, or 'topic' for the live credit.scores.")
    ] = "topic",
    last: Annotated[int, typer.Option("--last", help="With --scores topic: the latest N scores of this model.")] = 2000,
    model: ArtifactOption = DEFAULT_ARTIFACT,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the result, as JSON.")] = False,
) -> None:
    """Population stability index of live scores against the training score distribution."""
    from services.scoring.drift import population_stability
    from services.scoring.scorecard import Scorecard

    if scores == "topic":
        text = "\n".join(str(v) for v in _live_scores(Scorecard.load(model).model_id, last))
    else:
        try:
            text = sys.stdin.read() if scores == "-" else Path(scores).read_text(encoding="utf-8")
        except OSError as exc:
            typer.echo(f"cannot read scores: {exc}", err=True)
            raise typer.Exit(2) from None
    values: list[float] = []
    for number, line in enumerate(text.splitlines(), start=1):
        item = line.strip()
        if not item:
            continue
        try:
            values.append(float(item))
        except ValueError:
            typer.echo(f"line {number}: not a number: {item[:40]!r}", err=True)
            raise typer.Exit(2) from None
    if not values:
        typer.echo("no scores given", err=True)
        raise typer.Exit(2)
    scorecard = Scorecard.load(model)
    try:
        stability = population_stability(values, scorecard.score_distribution)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if not as_json:
        edges = scorecard.score_distribution.edges
        typer.echo(f"{'bin':<22} {'train':>7} {'live':>7} {'psi':>8}")
        for i, (e, a, c) in enumerate(zip(stability.expected, stability.actual, stability.contributions, strict=True)):
            lower = f"{edges[i - 1]:.1f}" if i > 0 else "-inf"
            upper = f"{edges[i]:.1f}" if i < len(edges) else "inf"
            typer.echo(f"[{lower}, {upper}){'':<{max(0, 20 - len(lower) - len(upper))}} {e:>7.3f} {a:>7.3f} {c:>8.4f}")
        typer.echo(f"PSI {stability.psi:.4f} over {stability.n} scores: {stability.verdict}")
    _last_line(
        {"model_id": scorecard.model_id, "n": stability.n, "psi": round(stability.psi, 6), "verdict": stability.verdict}
    )


def _live_scores(model_id: str, last: int) -> list[float]:
    """The latest `last` points that `model_id` gave, read from credit.scores (no consumer group)."""
    import asyncio

    from shared.contracts import ScoreComputed
    from shared.messaging.topic_io import TopicReader
    from shared.settings import Settings

    settings = Settings()

    async def read() -> list[float]:
        async with TopicReader(settings, [settings.topics.scores]) as reader:
            records = await reader.drain(idle_s=1.0, timeout_s=300)
        scored = [
            (r.timestamp_ms, r.event.points)
            for r in records
            if isinstance(r.event, ScoreComputed) and r.event.model_id == model_id and r.event.points is not None
        ]
        return [points for _, points in sorted(scored)[-last:]]

    try:
        return asyncio.run(read())
    except Exception as exc:  # the broker is the usual suspect: say where and how to start it
        typer.echo(f"cannot read {settings.topics.scores} at {settings.kafka_servers}: {exc!r}; start the platform with `creditwindow dev up`", err=True)
        raise typer.Exit(2) from None

