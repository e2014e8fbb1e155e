"""docs/pacing.md from an experiment: the generated sections, rewritten in place. Pure apart from `write_doc`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from devtools.experiments.pacing.experiment import Experiment, Level, forecast_error, share_key
from devtools.experiments.pacing.simulation import DEFAULT_POINTS, FULL_TOLERANCE, METRICS, RULE_LABELS, RULES
from devtools.experiments.pacing.statistics import PairedDifference


def _money(value: float) -> str:
    return f"{value:,.0f}"


def _metric_text(metric: str, value: float) -> str:
    if metric in ("exposure_used", "el_used"):
        return f"{value:.1%}"
    if metric in ("approved_goods", "approved_bads"):
        return f"{value:.1f}"
    return _money(value)


def _difference_text(metric: str, diff: PairedDifference) -> str:
    if metric in ("exposure_used", "el_used"):
        return f"{diff.mean * 100:+.1f} ± {2 * diff.se * 100:.1f} pp"
    if metric in ("approved_goods", "approved_bads"):
        return f"{diff.mean:+.1f} ± {2 * diff.se:.1f}"
    return f"{diff.mean:+,.0f} ± {2 * diff.se:,.0f}"


METRIC_LABELS = {
    "expected_profit": "expected profit (CNY/yr)",
    "expected_loss": "expected loss (CNY)",
    "approved_goods": "goods approved",
    "approved_bads": "bads approved",
    "realised_loss": "realised loss (CNY)",
    "exposure_used": "exposure budget used",
    "el_used": "EL budget used",
}


def command_arguments(experiment: Experiment, out: str = "docs/") -> str:
    """The options that reproduce `experiment`."""
    shares = " ".join(f"--budget-share {share:g}" for share in experiment.shares)
    tuning = experiment.settings.get("tuning_shuffles", experiment.shuffles)
    extra = "" if tuning == experiment.shuffles else f" --tuning-shuffles {tuning}"
    points = experiment.settings.get("points", DEFAULT_POINTS)
    extra += "" if points == DEFAULT_POINTS else f" --points {points}"
    return f"--shuffles {experiment.shuffles} --seed {experiment.seed} {shares}{extra} --out {out}"


def _level_table(level: Level, shuffles: int, title: str) -> list[str]:
    lines = [
        f"**{title}** — mean across {shuffles} shuffles [p5 – p95]; hindsight is one run, best margin first.",
        "",
        "| metric | "
        + " | ".join(RULE_LABELS[r] for r in RULES)
        + " | hindsight | pacing − FCFS (mean ± 2 SE) | pacing ahead |",
        "|---|" + "---|" * (len(RULES) + 3),
    ]
    for metric in METRICS:
        cells = []
        for rule in RULES:
            s = level.spread(rule, metric)
            cells.append(
                f"{_metric_text(metric, s.mean)} [{_metric_text(metric, s.p5)} – {_metric_text(metric, s.p95)}]"
            )
        cells.append(_metric_text(metric, level.hindsight.metric(metric)))
        diff = level.difference("pacing", metric)
        cells += [_difference_text(metric, diff), f"{diff.wins}/{diff.n}"]
        lines.append(f"| {METRIC_LABELS[metric]} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _verdict_line(level: Level, rule: str, name: str) -> str:
    diff = level.difference(rule, "expected_profit")
    el = level.difference(rule, "expected_loss")
    goods = level.difference(rule, "approved_goods")
    bads = level.difference(rule, "approved_bads")
    realised = level.difference(rule, "realised_loss")
    direction = "more" if diff.mean > 0 else "less"
    interval = "the interval excludes zero" if diff.low > 0 or diff.high < 0 else "the interval includes zero"
    return (
        f"{name} earned {direction} expected profit than FCFS ({level.uplift(rule):+.2%}; "
        f"{_difference_text('expected_profit', diff)} CNY/yr, "
        f"{interval}; ahead in {diff.wins} of {diff.n} shuffles, sign test p = {diff.sign_test_p:.2g}); "
        f"expected loss {_difference_text('expected_loss', el)} CNY; goods approved {_difference_text('approved_goods', goods)}, "
        f"bads approved {_difference_text('approved_bads', bads)}; realised loss {_difference_text('realised_loss', realised)} CNY."
    )


def _slack_text(slack: float) -> str:
    return f"{slack:g}"


def render_sections(experiment: Experiment, images: Mapping[str, str]) -> dict[str, str]:
    """The generated sections of docs/pacing.md: parameters, results, tuning, verdict."""
    pacing = experiment.pacing
    segments = sorted(experiment.levels[0].budgets)
    errors = forecast_error(experiment)
    points = experiment.settings.get("points", DEFAULT_POINTS)
    parameters = [
        (
            f"Regenerate with `creditwindow experiment pacing {command_arguments(experiment)}` "
            "(the experiment's code: `devtools/experiments/pacing/`)."
        ),
        "",
        (
            f"- Policy `{experiment.policy_label}`, scorecard `{experiment.model_id}`; {experiment.applications:,} applications, "
            f"of which {experiment.offers} pass the rules (an offer before the budget); the others close whatever the budget."
        ),
        (
            f"- Reported orders: {experiment.shuffles} shuffles of seed {experiment.seed} (purpose `test`), each with its own "
            f"forecast (purpose `forecast`). Tuning: {experiment.tuning.shuffles} other shuffles and forecasts of the same seed "
            "(purposes `tune`, `forecast-tune`)."
        ),
        (
            f"- Policy pacing: {'enabled' if pacing.enabled else 'disabled'}, slack {_slack_text(pacing.slack)}; "
            f"tuned slack (best on the `tune` orders): {_slack_text(experiment.tuned_slack)}. Forecast demand curves of "
            f"at most {points} points per segment."
        ),
        "- Forecast error (the forecast's whole demand over the period's, in exposure, across the reported shuffles): "
        + "; ".join(
            f"{segment} {spread.mean:+.1%} on average, {spread.p5:+.1%} to {spread.p95:+.1%} (p5 – p95)"
            for segment, spread in errors.items()
        )
        + ".",
        "",
        "Budgets per segment, exposure / expected loss (CNY):",
        "",
        "| budget share | " + " | ".join(segments) + " |",
        "|---|" + "---|" * len(segments),
    ]
    for level in experiment.levels:
        note = " (nothing to save)" if level.share >= 1 else ""
        parameters.append(
            f"| {level.share:g}{note} | "
            + " | ".join(
                f"{_money(level.budgets[s].exposure)} / {_money(level.budgets[s].expected_loss)}" for s in segments
            )
            + " |"
        )

    results: list[str] = []
    for level in experiment.levels:
        title = f"Budget share {level.share:g}" + (", the budget cannot bind" if level.share >= 1 else "")
        results += _level_table(level, experiment.shuffles, title)
    results.append(
        f"![cumulative expected profit against budget used; profit differences across shuffles]({images['main']})"
    )

    tuning = experiment.tuning
    shares = experiment.shares
    tuning_lines = [
        (
            f"{len(tuning.points)} slack values, each replayed on {tuning.shuffles} `tune` shuffles (with their own forecasts) "
            "per budget share: the mean expected profit relative to FCFS on the same orders. A slack is acceptable when, "
            f"at share 1, even the pessimistic end of its interval (mean − 2 SE) is within {FULL_TOLERANCE:.0%} of FCFS; "
            "the tuned slack is the acceptable one with the best mean uplift at the tight shares."
        ),
        "",
        "| slack | " + " | ".join(f"uplift @ {s:g}" for s in shares) + " | mean tight uplift | acceptable |",
        "|---|" + "---|" * (len(shares) + 2),
    ]
    for point in tuning.points:
        marks = [m for m, p in (("policy", tuning.policy_point), ("tuned", tuning.chosen)) if p is point]
        mark = f" ({', '.join(marks)})" if marks else ""
        tuning_lines.append(
            f"| {_slack_text(point.slack)}{mark} | "
            + " | ".join(f"{point.uplift[s]:+.2%}" for s in shares)
            + f" | {point.mean_uplift:+.2%} | {'yes' if point.acceptable else 'no'} |"
        )
    tuning_lines += [
        "",
        "The tuned slack against the policy's on the reported (`test`) orders, expected profit (CNY/yr), "
        "mean ± 2 SE and shuffles ahead:",
        "",
        "| budget share | tuned − policy pacing | tuned − FCFS |",
        "|---|---|---|",
    ]
    for level in experiment.levels:
        cells = []
        for baseline in ("pacing", "fcfs"):
            diff = level.difference("tuned", "expected_profit", baseline)
            cells.append(f"{_difference_text('expected_profit', diff)} ({diff.wins}/{diff.n})")
        tuning_lines.append(f"| {level.share:g} | " + " | ".join(cells) + " |")
    tuning_lines += ["", f"![expected profit against FCFS by slack]({images['tuning']})"]

    targets = experiment.targets()
    verdict = [
        "The issue's targets for the policy's own pacing setting, on the reported orders (expected profit "
        "relative to FCFS, mean over the shuffles):",
        "",
        "| budget share | uplift vs FCFS | target | met | hindsight vs FCFS |",
        "|---|---|---|---|---|",
    ]
    for level in experiment.levels:
        t = targets[share_key(level.share)]
        verdict.append(
            f"| {level.share:g} | {t['uplift']:+.2%} | ≥ {t['target']:+.0%} | {'yes' if t['met'] else 'no'} | "
            f"{level.hindsight_uplift:+.2%} |"
        )
    most = experiment.most_used
    verdict += [
        "",
        f"Budget never overspent: the most any run (every rule, share and shuffle, and hindsight) took of any one "
        f"budget, a segment's exposure or expected loss, was {most:.2%}"
        + (" — an overspend." if most > 1 else "."),
        "",
    ]
    for level in experiment.levels:
        verdict.append(f"- Budget share {level.share:g}: " + _verdict_line(level, "pacing", "the policy's pacing"))
    if experiment.tuned_slack == pacing.slack:
        verdict.append("- The tuned slack is the policy's own.")
    else:
        gains = [level.difference("tuned", "expected_profit", "pacing") for level in experiment.levels]
        better = all(g.low > 0 for g in gains)
        verdict.append(
            f"- The tuned slack ({_slack_text(experiment.tuned_slack)}) "
            + ("beat" if better else "did not clearly beat")
            + " the policy's on the reported orders at every budget share"
            + (" (each interval excludes zero)." if better else " (some interval includes zero or favours the policy).")
        )
    return {
        "pacing-parameters": "\n".join(parameters),
        "pacing-results": "\n".join(results),
        "pacing-tuning": "\n".join(tuning_lines),
        "pacing-verdict": "\n".join(verdict),
    }


DOC_SKELETON = "# Budget pacing\n"


def _replace_section(text: str, name: str, body: str) -> str:
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    start = text.find(begin)
    stop = text.find(end, start)
    if start >= 0 and stop >= 0:
        return text[:start] + block + text[stop + len(end) :]
    return text.rstrip() + "\n\n" + block + "\n"


def write_doc(experiment: Experiment, out: Path, images: Mapping[str, Path]) -> Path:
    """Rewrite the generated sections of `out`/pacing.md; hand-written text around them stays."""
    path = out / "pacing.md"
    text = path.read_text(encoding="utf-8") if path.exists() else DOC_SKELETON
    relative = {name: image.relative_to(out).as_posix() for name, image in images.items()}
    for name, body in render_sections(experiment, relative).items():
        text = _replace_section(text, name, body)
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path

