"""Evaluating the scorecard: stratified k-fold cross-validation of the whole pipeline, plots, docs.

Each fold re-runs `modelling.training.train` on the other folds (binning, regression,
Platt calibration with its own inner folds, grades, cut-offs), loads the resulting artifact into
the runtime `Scorecard`, and scores the held-out rows with it: what is measured is what ships.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold

from devtools.germancredit import GermanRow
from modelling.training import TrainingConfig, brier, discrimination, train
from services.scoring.scorecard import Scorecard
from shared.contracts import SEGMENTS

__all__ = [
    "CrossValidation",
    "FoldResult",
    "artifact_section",
    "cross_validate",
    "cv_section",
    "write_plots",
]

METRICS = ("auc", "ks", "gini", "brier")
LABELS = {"auc": "AUC", "ks": "KS", "gini": "Gini", "brier": "Brier"}


@dataclass(frozen=True)
class FoldResult:
    """The held-out metrics of one fold."""

    fold: int
    rows: int
    auc: float
    ks: float
    gini: float
    brier: float


@dataclass(frozen=True)
class CrossValidation:
    """Per-fold metrics and every row's held-out points and PD."""

    folds: tuple[FoldResult, ...]
    seed: int
    points: np.ndarray
    pd: np.ndarray
    bad: np.ndarray
    fold_of: np.ndarray
    cutoffs: Mapping[str, float]

    def summary(self) -> dict[str, Any]:
        """Mean and sample standard deviation of each metric over the folds."""
        out: dict[str, Any] = {"folds": len(self.folds), "seed": self.seed, "rows": len(self.bad)}
        for metric in METRICS:
            values = [getattr(f, metric) for f in self.folds]
            out[metric] = {
                "mean": round(statistics.fmean(values), 4),
                "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
            }
        pooled = discrimination(self.points, self.bad)
        out["pooled"] = {k: round(v, 4) for k, v in (pooled | {"brier": brier(self.pd, self.bad)}).items()}
        return out


def cross_validate(
    rows: Sequence[GermanRow], config: TrainingConfig | None = None, *, folds: int = 5, seed: int | None = None
) -> CrossValidation:
    """Stratified `folds`-fold CV (shuffled with `seed`, default the config's) of the full pipeline."""
    config = config or TrainingConfig()
    seed = config.seed if seed is None else seed
    bad = np.array([0 if row.good else 1 for row in rows], dtype=int)
    points = np.zeros(len(rows))
    pd_ = np.zeros(len(rows))
    fold_of = np.zeros(len(rows), dtype=int)
    results = []
    cutoffs: dict[str, list[float]] = {}
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (fit_rows, held_out) in enumerate(splitter.split(np.zeros(len(rows)), bad)):
        model = Scorecard.from_artifact(train([rows[i] for i in fit_rows], config).artifact)
        for i in held_out:
            points[i] = model.points(rows[i].applicant)
            pd_[i] = model.pd(points[i])
            fold_of[i] = k
        for segment in SEGMENTS:
            cutoffs.setdefault(segment, []).append(model.cutoff(segment))
        scores = discrimination(points[held_out], bad[held_out])
        results.append(FoldResult(fold=k, rows=len(held_out), brier=brier(pd_[held_out], bad[held_out]), **scores))
    return CrossValidation(
        folds=tuple(results),
        seed=seed,
        points=points,
        pd=pd_,
        bad=bad,
        fold_of=fold_of,
        cutoffs={segment: statistics.fmean(values) for segment, values in cutoffs.items()},
    )


def write_plots(cv: CrossValidation, directory: Path) -> dict[str, Path]:
    """ROC, score distributions of goods and bads, and a calibration plot, as PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "roc": directory / "model-roc.png",
        "scores": directory / "model-score-distribution.png",
        "calibration": directory / "model-calibration.png",
    }
    metadata = {"Software": None}

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for fold in cv.folds:
        mask = cv.fold_of == fold.fold
        fpr, tpr, _ = roc_curve(cv.bad[mask], -cv.points[mask])
        ax.plot(fpr, tpr, lw=0.8, alpha=0.5, label=f"fold {fold.fold + 1}: AUC {fold.auc:.3f}")
    fpr, tpr, _ = roc_curve(cv.bad, -cv.points)
    summary = cv.summary()
    ax.plot(fpr, tpr, lw=2, color="black", label=f"pooled held-out: AUC {summary['pooled']['auc']:.3f}")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set(xlabel="false positive rate (goods flagged)", ylabel="true positive rate (bads flagged)")
    ax.set_title(f"ROC, {len(cv.folds)}-fold CV, mean AUC {summary['auc']['mean']:.3f}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(paths["roc"], dpi=110, metadata=metadata)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    bins = np.linspace(np.floor(cv.points.min() / 10) * 10, np.ceil(cv.points.max() / 10) * 10, 31).tolist()
    ax.hist(cv.points[cv.bad == 0], bins=bins, alpha=0.6, density=True, label=f"goods ({int((cv.bad == 0).sum())})")
    ax.hist(cv.points[cv.bad == 1], bins=bins, alpha=0.6, density=True, label=f"bads ({int(cv.bad.sum())})")
    for segment, cutoff in cv.cutoffs.items():
        ax.axvline(cutoff, ls="--", lw=1, color="black" if segment == "individual" else "grey")
        left = segment != "individual"
        ax.text(
            cutoff,
            ax.get_ylim()[1] * 0.95,
            f" {segment} cut-off ",
            fontsize=7,
            rotation=90,
            va="top",
            ha="right" if left else "left",
        )
    ax.set(xlabel="points (held-out)", ylabel="density", title="Score distributions, goods vs bads (held-out)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths["scores"], dpi=110, metadata=metadata)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 5))
    order = np.argsort(cv.pd, kind="stable")
    groups = np.array_split(order, 10)
    predicted = [float(cv.pd[g].mean()) for g in groups]
    observed = [float(cv.bad[g].mean()) for g in groups]
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8, label="perfect calibration")
    ax.plot(predicted, observed, marker="o", label="deciles of predicted PD")
    ax.set(xlabel="mean predicted PD", ylabel="observed bad rate", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(f"Calibration (held-out), Brier {summary['brier']['mean']:.3f}")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(paths["calibration"], dpi=110, metadata=metadata)
    plt.close(fig)
    return paths


def cv_section(cv: CrossValidation, images: Mapping[str, Path], docs_dir: Path) -> str:
    """Markdown for the cross-validation section of docs/model.md."""
    s = cv.summary()
    lines = [
        (
            f"Stratified {s['folds']}-fold cross-validation, shuffled with seed {s['seed']}, {s['rows']} rows; each fold "
            "re-trains the whole pipeline (binning, regression, Platt calibration with its own inner folds) and scores "
            "its held-out rows with the runtime `Scorecard` loaded from that fold's artifact. "
            "Std is the sample standard deviation over folds."
        ),
        "",
        "| metric | mean | std |",
        "| --- | ---: | ---: |",
    ]
    for metric in METRICS:
        lines.append(f"| {LABELS[metric]} | {s[metric]['mean']:.4f} | {s[metric]['std']:.4f} |")
    lines += ["", "| fold | rows | AUC | KS | Gini | Brier |", "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for f in cv.folds:
        lines.append(f"| {f.fold + 1} | {f.rows} | {f.auc:.4f} | {f.ks:.4f} | {f.gini:.4f} | {f.brier:.4f} |")
    p = s["pooled"]
    lines += [
        "",
        (
            f"Pooled over all held-out rows: AUC {p['auc']:.4f}, KS {p['ks']:.4f}, Gini {p['gini']:.4f}, Brier {p['brier']:.4f} "
            "(pooling mixes the folds' models, whose point scales differ slightly)."
        ),
        "",
    ]
    for title, key in (("ROC", "roc"), ("Score distributions", "scores"), ("Calibration", "calibration")):
        lines.append(f"![{title}]({images[key].relative_to(docs_dir).as_posix()})")
    return "\n".join(lines)


def _range(b: Mapping[str, Any]) -> str:
    lower, upper = b.get("lower"), b.get("upper")
    if lower is None and upper is None:
        return "all"
    if lower is None:
        return f"< {upper:g}"
    if upper is None:
        return f">= {lower:g}"
    return f"[{lower:g}, {upper:g})"


def artifact_section(artifact: Mapping[str, Any], model_id: str) -> str:
    """Markdown describing the committed artifact: scaling, calibration, grades, cut-offs, points."""
    scaling, calibration = artifact["scaling"], artifact["calibration"]
    lines = [
        (
            f"Model id: `{model_id}` (format `{artifact['format']}`), trained on {artifact['training']['rows']} rows, "
            f"data sha256 `{artifact['training']['data_sha256']}`."
        ),
        "",
        (
            f"Scaling: {scaling['base_points']:g} points at good:bad odds {scaling['base_odds']:g}:1, "
            f"{scaling['pdo']:g} points to double the odds (factor {scaling['factor']:.4f}, offset {scaling['offset']:.4f})."
        ),
        (
            f"PD: Platt, `pd = 1 / (1 + exp(-({calibration['intercept']:.6f} + ({calibration['slope']:.6f}) * points)))`, "
            f"fitted on {calibration['fitted_on']}."
        ),
        "",
        "| segment | cut-off (points) | PD at cut-off | approval rate (train) | bad rate of approved (train) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for segment, c in artifact["cutoffs"].items():
        lines.append(
            f"| {segment} | {c['points']:.2f} | {c['pd']:.2f} | {c['approval_rate_train']:.1%} | "
            f"{c['bad_rate_approved_train']:.1%} |"
        )
    counts = artifact["metrics"]["grade_counts_train"]
    lines += ["", "| grade | PD below | training rows |", "| --- | ---: | ---: |"]
    for band in artifact["grades"]:
        bound = "-" if band["pd_below"] is None else f"{band['pd_below']:.2f}"
        lines.append(f"| {band['grade']} | {bound} | {counts[band['grade']]} |")
    m = artifact["metrics"]
    lines += [
        "",
        (
            f"In-sample: AUC {m['in_sample']['auc']:.4f}, KS {m['in_sample']['ks']:.4f}, Brier {m['in_sample']['brier']:.4f}. "
            f"Out-of-fold (the calibration folds): AUC {m['out_of_fold']['auc']:.4f}, KS {m['out_of_fold']['ks']:.4f}."
        ),
        "",
        "| characteristic | IV | bin | rows | bad rate | WoE | points |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for c in artifact["characteristics"]:
        for i, b in enumerate(c["bins"]):
            label = ", ".join(b["categories"]) if c["kind"] == "categorical" else _range(b)
            head = f"{c['name']} ({c['monotonic_trend']})" if i == 0 else ""
            iv = f"{c['iv']:.3f}" if i == 0 else ""
            lines.append(
                f"| {head} | {iv} | {label} | {b['count']} | {b['bad_rate']:.3f} | {b['woe']:.3f} | {b['points']:.2f} |"
            )
        if c["missing"]["points"] == c["special"]["points"]:
            lines.append(f"|  |  | missing or unseen | - | - | - | {c['missing']['points']:.2f} |")
        else:
            lines.append(f"|  |  | missing | - | - | - | {c['missing']['points']:.2f} |")
            lines.append(f"|  |  | unseen (special) | - | - | - | {c['special']['points']:.2f} |")
    excluded = ", ".join(f"{e['name']} (IV {e['iv']:.4f})" for e in artifact["excluded_characteristics"])
    lines += ["", f"Dropped by the IV filter: {excluded or 'none'}."]
    return "\n".join(lines)
