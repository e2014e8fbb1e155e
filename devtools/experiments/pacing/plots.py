"""The pacing experiment's plots (matplotlib, imported only here): docs/img/pacing.png and pacing-tuning.png."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from devtools.experiments.pacing.experiment import Experiment, Level
from devtools.experiments.pacing.simulation import RULE_LABELS, RULES, Run


def representative(level: Level) -> int:
    """The shuffle whose pacing − FCFS profit difference is nearest the median one."""
    diffs = _diffs(level)
    middle = statistics.median(diffs)
    return min(range(len(diffs)), key=lambda k: (abs(diffs[k] - middle), k))


def _cumulative(run: Run) -> tuple[list[int], list[float], list[float]]:
    """Arrival position, exposure budget used and expected profit after each grant (starting from zero)."""
    budget = sum(b.exposure for b in run.budgets.values()) or 1
    positions, used, profit = [0], [0.0], [0.0]
    exposure = 0
    for g in run.grants:
        exposure += g.limit
        positions.append(g.position + 1)
        used.append(exposure / budget)
        profit.append(profit[-1] + g.limit * g.margin)
    return positions, used, profit


def write_plots(experiment: Experiment, directory: Path) -> dict[str, Path]:
    """docs/img/pacing.png (one shuffle's paths and the difference distribution) and pacing-tuning.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    paths = {"main": directory / "pacing.png", "tuning": directory / "pacing-tuning.png"}
    metadata = {"Software": None}
    colours = {
        "fcfs": "tab:grey",
        "pacing": "tab:blue",
        "tuned": "tab:green",
        "balanced": "tab:orange",
        "hindsight": "black",
    }

    level = experiment.levels[len(experiment.levels) // 2]
    k = representative(level)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for rule in (*RULES, "hindsight"):
        run = level.hindsight if rule == "hindsight" else level.runs[rule][k]
        positions, used, profit = _cumulative(run)
        style = {
            "color": colours[rule],
            "lw": 1.2 if rule == "hindsight" else 1.8,
            "ls": ":" if rule == "hindsight" else "-",
        }
        axes[0].plot(used, profit, label=RULE_LABELS[rule], **style)
        if rule != "hindsight":
            axes[1].step(positions, used, where="post", label=RULE_LABELS[rule], **style)
    axes[0].set(xlabel="exposure budget used", ylabel="cumulative expected profit (CNY/yr)")
    axes[0].set_title(f"Budget share {level.share:g}, shuffle {k} (median difference)", fontsize=10)
    axes[0].legend(fontsize=8, loc="upper left")
    axes[1].set(xlabel="applications arrived", ylabel="exposure budget used", ylim=(0, 1.05))
    axes[1].set_title("How fast each rule spends the budget", fontsize=10)
    axes[1].legend(fontsize=8, loc="lower right")

    diffs = {lv.share: [d / 1000 for d in _diffs(lv)] for lv in experiment.levels}
    low = min(min(v) for v in diffs.values())
    high = max(max(v) for v in diffs.values())
    width = (high - low) / 25 or 1
    bins = [low + i * width for i in range(26)]
    for lv in experiment.levels:
        axes[2].hist(diffs[lv.share], bins=bins, alpha=0.55, label=f"budget share {lv.share:g}")
    axes[2].axvline(0, color="black", lw=0.8)
    axes[2].set(xlabel="pacing − FCFS expected profit (thousand CNY/yr)", ylabel="shuffles")
    axes[2].set_title(f"Paired differences over {experiment.shuffles} shuffles", fontsize=10)
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(paths["main"], dpi=110, metadata=metadata)
    plt.close(fig)

    tuning = experiment.tuning
    margins = sorted({p.max_margin for p in tuning.points})
    steepness = sorted({p.steepness for p in tuning.points})
    lookup = {(p.max_margin, p.steepness): p.mean_uplift * 100 for p in tuning.points}
    grid = [[lookup.get((m, s), math.nan) for s in steepness] for m in margins]
    fig, ax = plt.subplots(figsize=(7, 5))
    finite = [v for row in grid for v in row if not math.isnan(v)]
    # Clipped so that the few ruinous settings do not wash out the differences that matter.
    bound = min(max(abs(min(finite)), abs(max(finite))), 20) or 1
    image = ax.imshow(grid, cmap="RdBu", vmin=-bound, vmax=bound, aspect="auto", origin="lower")
    ax.set_xticks(range(len(steepness)), [f"{s:g}" for s in steepness])
    ax.set_yticks(range(len(margins)), [f"{m:g}" for m in margins])
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if not math.isnan(value):
                shade = "white" if abs(value) > 0.6 * bound else "black"
                ax.text(j, i, f"{value:+.1f}", ha="center", va="center", fontsize=7, color=shade)
    for point, edge, inset in (
        (tuning.policy_point, "black", 0.0),
        (tuning.chosen, "tab:green", 0.06),
        (tuning.balanced, "tab:orange", 0.12),
    ):
        i, j = margins.index(point.max_margin), steepness.index(point.steepness)
        ax.add_patch(
            plt.Rectangle(
                (j - 0.5 + inset, i - 0.5 + inset), 1 - 2 * inset, 1 - 2 * inset, fill=False, edgecolor=edge, lw=2.5
            )
        )
    ax.set(xlabel="steepness", ylabel="max_margin")
    ax.set_title(
        f"Expected profit vs FCFS, % (mean over budget shares, {tuning.shuffles} tune shuffles)\n"
        "black: policy, green: tuned, orange: balanced",
        fontsize=10,
    )
    fig.colorbar(image, ax=ax, label="uplift %")
    fig.tight_layout()
    fig.savefig(paths["tuning"], dpi=110, metadata=metadata)
    plt.close(fig)
    return paths


def _diffs(level: Level) -> list[float]:
    return [
        p - f
        for f, p in zip(level.values("fcfs", "expected_profit"), level.values("pacing", "expected_profit"), strict=True)
    ]

