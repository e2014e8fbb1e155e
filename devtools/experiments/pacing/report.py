"""docs/pacing.md from an experiment: the generated sections, rewritten in place. Pure apart from `write_doc`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from devtools.experiments.pacing.experiment import Experiment, Level, pareto_frontier
from devtools.experiments.pacing.simulation import METRICS, RULE_LABELS, RULES
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
        f"{name} earned {direction} expected profit than FCFS ({_difference_text('expected_profit', diff)} CNY/yr, "
        f"{interval}; ahead in {diff.wins} of {diff.n} shuffles, sign test p = {diff.sign_test_p:.2g}); "
        f"expected loss {_difference_text('expected_loss', el)} CNY; goods approved {_difference_text('approved_goods', goods)}, "
        f"bads approved {_difference_text('approved_bads', bads)}; realised loss {_difference_text('realised_loss', realised)} CNY."
    )


def render_sections(experiment: Experiment, images: Mapping[str, str]) -> dict[str, str]:
    """The generated sections of docs/pacing.md: parameters, results, tuning, verdict."""
    pacing, tuned, balanced = experiment.pacing, experiment.tuned, experiment.balanced
    every = [*experiment.levels, *([experiment.control] if experiment.control else [])]
    segments = sorted(experiment.levels[0].budgets)
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
            f"- Reported orders: {experiment.shuffles} shuffles of seed {experiment.seed} (purpose `test`). "
            f"Tuning: {experiment.tuning.shuffles} other shuffles of the same seed (purpose `tune`)."
        ),
        (
            f"- Policy pacing: max_margin {pacing.max_margin:g}, steepness {pacing.steepness:g}. "
            f"Tuned pacing (best at the tight budgets): max_margin {tuned.max_margin:g}, steepness {tuned.steepness:g}. "
            f"Balanced pacing (best among settings no worse than the policy's at the tight budgets and at the control): "
            f"max_margin {balanced.max_margin:g}, steepness {balanced.steepness:g}."
        ),
        "",
        "Budgets per segment, exposure / expected loss (CNY):",
        "",
        "| budget share | " + " | ".join(segments) + " |",
        "|---|" + "---|" * len(segments),
    ]
    for level in every:
        note = " (control: nothing to save)" if level is experiment.control else ""
        parameters.append(
            f"| {level.share:g}{note} | "
            + " | ".join(
                f"{_money(level.budgets[s].exposure)} / {_money(level.budgets[s].expected_loss)}" for s in segments
            )
            + " |"
        )

    results: list[str] = []
    for level in experiment.levels:
        results += _level_table(level, experiment.shuffles, f"Budget share {level.share:g}")
    if experiment.control:
        results += _level_table(
            experiment.control,
            experiment.shuffles,
            f"Control: budget share {experiment.control.share:g}, the budget cannot bind",
        )
    results.append(
        f"![cumulative expected profit against budget used; profit differences across shuffles]({images['main']})"
    )

    tuning = experiment.tuning
    ranked = sorted(tuning.points, key=lambda p: -p.mean_uplift)
    shares = experiment.shares
    control = experiment.control
    control_header = f" uplift @ {control.share:g} (control, not scored) |" if control else ""
    tuning_lines = [
        (
            f"Grid of {len(tuning.points)} settings, each replayed on {tuning.shuffles} `tune` shuffles per budget share. "
            "The score is the mean expected profit relative to FCFS on the same orders, averaged over the budget shares; "
            "the control column is shown, not scored."
        ),
        "",
        "| rank | max_margin | steepness | "
        + " | ".join(f"uplift @ {s:g}" for s in shares)
        + f" | mean uplift |{control_header}",
        "|---|---|---|" + "---|" * (len(shares) + 1) + ("---|" if control else ""),
    ]
    shown = ranked[:8]
    if tuning.policy_point not in shown:
        shown.append(tuning.policy_point)
    for point in shown:
        mark = " (policy)" if point is tuning.policy_point else ""
        control_cell = f" {point.control_uplift:+.2%} |" if point.control_uplift is not None else ""
        tuning_lines.append(
            f"| {ranked.index(point) + 1}{mark} | {point.max_margin:g} | {point.steepness:g} | "
            + " | ".join(f"{point.uplift[s]:+.2%}" for s in shares)
            + f" | {point.mean_uplift:+.2%} |{control_cell}"
        )
    frontier = pareto_frontier(tuning.points)
    if frontier:
        tuning_lines += [
            "",
            "The trade-off: settings no other setting beats on both the mean uplift at the tight budgets and the "
            "uplift at the control (both on the `tune` orders), most aggressive first"
            + (f"; the first {FRONTIER_ROWS} of {len(frontier)}." if len(frontier) > FRONTIER_ROWS else "."),
            "",
            "| max_margin | steepness | mean uplift | uplift @ control |",
            "|---|---|---|---|",
        ]
        for point in frontier[:FRONTIER_ROWS]:
            mark = " (policy)" if point is tuning.policy_point else ""
            tuning_lines.append(
                f"| {point.max_margin:g}{mark} | {point.steepness:g} | {point.mean_uplift:+.2%} | {point.control_uplift:+.2%} |"
            )
        if tuning.policy_point not in frontier:
            tuning_lines += [
                "",
                "The policy's setting is not on this frontier: another setting is at least as good on both.",
            ]
    tuning_lines += [
        "",
        (
            "Tuned and balanced settings against the policy's on the reported (`test`) orders, expected profit (CNY/yr), "
            "mean ± 2 SE and shuffles ahead:"
        ),
        "",
        "| budget share | tuned − policy pacing | tuned − FCFS | balanced − policy pacing | balanced − FCFS |",
        "|---|---|---|---|---|",
    ]
    for level in every:
        note = " (control)" if level is control else ""
        cells = []
        for rule in ("tuned", "balanced"):
            for baseline in ("pacing", "fcfs"):
                diff = level.difference(rule, "expected_profit", baseline)
                cells.append(f"{_difference_text('expected_profit', diff)} ({diff.wins}/{diff.n})")
        tuning_lines.append(f"| {level.share:g}{note} | " + " | ".join(cells) + " |")
    tuning_lines += ["", f"![tuning grid]({images['tuning']})"]

    verdict = []
    for level in experiment.levels:
        verdict.append(f"- Budget share {level.share:g}: " + _verdict_line(level, "pacing", "the policy's pacing"))
    if control:
        verdict.append(
            f"- Control (budget share {control.share:g}, nothing to save): "
            + _verdict_line(control, "pacing", "the policy's pacing")
        )
    for rule, setting in (("tuned", tuned), ("balanced", balanced)):
        if (setting.max_margin, setting.steepness) == (pacing.max_margin, pacing.steepness):
            verdict.append(f"- The {rule} setting is the policy's own.")
            continue
        gains = [level.difference(rule, "expected_profit", "pacing") for level in experiment.levels]
        better = all(g.low > 0 for g in gains)
        line = (
            f"- The {rule} setting (max_margin {setting.max_margin:g}, steepness {setting.steepness:g}) "
            + ("beat" if better else "did not clearly beat")
            + " the policy's on the reported orders at every tight budget share"
            + (" (each interval excludes zero)" if better else " (some interval includes zero or favours the policy)")
        )
        if control:
            cost = control.difference(rule, "expected_profit", "pacing")
            line += (
                f"; where the budget cannot bind, its expected profit minus the policy's pacing's was "
                f"{_difference_text('expected_profit', cost)} CNY/yr (ahead in {cost.wins} of {cost.n} shuffles)"
            )
        verdict.append(line + ".")
    return {
        "pacing-parameters": "\n".join(parameters),
        "pacing-results": "\n".join(results),
        "pacing-tuning": "\n".join(tuning_lines),
        "pacing-verdict": "\n".join(verdict),
    }


FRONTIER_ROWS = 10
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

