"""The pacing experiment's plots (matplotlib, imported only here): docs/img/pacing.png and pacing-tuning.png."""

from __future__ import annotations

import statistics
from pathlib import Path

from devtools.experiments.pacing.experiment import Experiment, Level
from devtools.experiments.pacing.simulation import FULL_TOLERANCE, RULE_LABELS, RULES, TIGHT_TARGET, Run


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
    """docs/img/pacing.png (one shuffle's paths and the difference distribution) and pacing-tuning.png (uplift by slack)."""
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
        "hindsight": "black",
    }

    tight = [lv for lv in experiment.levels if lv.share < 1] or list(experiment.levels)
    level = tight[len(tight) // 2]
    k = representative(level)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for rule in (*RULES, "hindsight"):
        run = level.hindsight if rule == "hindsight" else level.runs[rule][k]
        positions, used, profit = _cumulative(run)
        style = {
            "color": colours[rule],
            "lw": 1.2 if rule == "hindsight" else 1.8,
            "ls": {"hindsight": ":", "tuned": "--"}.get(rule, "-"),
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
    fig, ax = plt.subplots(figsize=(7, 4.8))
    slacks = [p.slack for p in tuning.points]
    for share in experiment.shares:
        ax.plot(slacks, [p.uplift[share] * 100 for p in tuning.points], marker="o", ms=3, label=f"budget share {share:g}")
    ax.axhline(TIGHT_TARGET * 100, color="tab:green", lw=0.8, ls="--", label=f"target at a tight share (+{TIGHT_TARGET:.0%})")
    ax.axhline(-FULL_TOLERANCE * 100, color="tab:red", lw=0.8, ls="--", label=f"tolerance at share 1 (−{FULL_TOLERANCE:.0%})")
    ax.axhline(0, color="black", lw=0.6)
    for point, colour, name in ((tuning.policy_point, "black", "policy"), (tuning.chosen, "tab:green", "tuned")):
        ax.axvline(point.slack, color=colour, lw=1.2, ls=":", label=f"{name} slack {point.slack:g}")
    ax.set(xlabel="slack", ylabel="expected profit vs FCFS, %")
    ax.set_title(f"Pacing against the forecast, by slack ({tuning.shuffles} tune shuffles)", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(paths["tuning"], dpi=110, metadata=metadata)
    plt.close(fig)
    return paths


def _diffs(level: Level) -> list[float]:
    return [
        p - f
        for f, p in zip(level.values("fcfs", "expected_profit"), level.values("pacing", "expected_profit"), strict=True)
    ]

