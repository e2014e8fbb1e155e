"""`creditwindow model train | evaluate`: the scorecard's offline tooling, added to the operators' CLI.

The operators' CLI finds this module through the `creditwindow.commands` entry point (the runtime
never imports it). Heavy libraries (optbinning, scikit-learn, matplotlib) are imported inside the
commands that need them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from services.scoring.scorecard import DEFAULT_ARTIFACT
from shared.contracts import SEGMENTS

__all__ = ["register"]

ArtifactOption = Annotated[Path, typer.Option("--model", help="Scorecard artifact (JSON).")]


def _last_line(data: dict[str, object]) -> None:
    typer.echo(json.dumps(data, sort_keys=True))


def train(
    out: Annotated[Path, typer.Option("--out", help="Where to write the artifact.")] = DEFAULT_ARTIFACT,
) -> None:
    """Train the WoE scorecard on all 1,000 German Credit rows and write the artifact (deterministic)."""
    import hashlib

    from modelling.training import train as fit
    from modelling.training import write_artifact
    from services.scoring.scorecard import Scorecard

    model = fit()
    content = write_artifact(model.artifact, out)
    scorecard = Scorecard.from_artifact(model.artifact)
    metrics = model.artifact["metrics"]
    typer.echo(f"wrote {out} ({len(content)} bytes)")
    typer.echo(f"model_id {scorecard.model_id}")
    typer.echo(
        f"characteristics {len(scorecard.characteristics)}; in-sample AUC {metrics['in_sample']['auc']:.4f}; "
        f"out-of-fold AUC {metrics['out_of_fold']['auc']:.4f}"
    )
    for segment in SEGMENTS:
        typer.echo(f"cut-off {segment}: {scorecard.cutoff(segment):.2f} points")
    _last_line(
        {
            "model_id": scorecard.model_id,
            "path": str(out),
            "sha256": hashlib.sha256(content).hexdigest(),
            "in_sample_auc": metrics["in_sample"]["auc"],
            "out_of_fold_auc": metrics["out_of_fold"]["auc"],
        }
    )


def evaluate(
    folds: Annotated[int, typer.Option("--folds", min=2, max=20, help="Number of CV folds.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the summary, as JSON.")] = False,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Fold shuffling seed (default: the training seed).")
    ] = None,
    docs: Annotated[bool, typer.Option("--docs/--no-docs", help="Write docs/model.md sections and plots.")] = True,
    model: ArtifactOption = DEFAULT_ARTIFACT,
) -> None:
    """Stratified k-fold CV of the whole pipeline: AUC, KS, Gini, Brier (mean and std); JSON on the last line."""
    from devtools.germancredit import load_rows
    from modelling.evaluation import artifact_section, cross_validate, cv_section, write_plots
    from modelling.model_doc import DOCS_DIR, update_section
    from services.scoring.scorecard import Scorecard

    cv = cross_validate(load_rows(), folds=folds, seed=seed)
    summary = cv.summary()
    if docs:
        images = write_plots(cv, DOCS_DIR / "img")
        update_section("cross-validation", cv_section(cv, images, DOCS_DIR))
        artifact = json.loads(model.read_text(encoding="utf-8"))
        update_section("artifact", artifact_section(artifact, Scorecard.from_artifact(artifact).model_id))
        summary["docs"] = str(DOCS_DIR / "model.md")
    if not as_json:
        typer.echo(f"{summary['folds']}-fold stratified CV, seed {summary['seed']}, {summary['rows']} rows")
        for metric in ("auc", "ks", "gini", "brier"):
            typer.echo(f"  {metric:<6} {summary[metric]['mean']:.4f} ± {summary[metric]['std']:.4f}")
        for fold in cv.folds:
            typer.echo(f"  fold {fold.fold + 1}: AUC {fold.auc:.4f} KS {fold.ks:.4f} Brier {fold.brier:.4f}")
    _last_line(summary)


def register(root: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add `train` and `evaluate` to the operators' `model` group."""
    groups["model"].command("train")(train)
    groups["model"].command("evaluate")(evaluate)
