"""`creditwindow policy optimise`: segment budgets (and cut-offs) that maximise expected return on the
recorded scores within a capital and an expected-loss limit; a candidate policy file and a report.

The options are tried and chosen by `creditwindow.allocation` (its docstring states the formulation).
The command then replays the recorded scores through the candidate exactly as `creditwindow
simulate --policy` does, prints the optimiser's figures against the replay's with their relative
difference, and ends with status 1 when any differs by more than 1%. Nothing is published and Redis
is not touched: apply the candidate with `creditwindow policy apply`.

Scores come from `credit.scores` (``--source scores``) or from a source a plugin registers
(``--source germancredit`` with the dev tooling: `creditwindow.sources`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from creditwindow.allocation import (
    DEFAULT_FRACTIONS,
    DEFAULT_LEVELS,
    RELATIVE,
    Figures,
    OptimiseError,
    Plan,
    agreement,
    replayed_figures,
    replays_per_segment,
)
from creditwindow.allocation import optimise as optimise_plan
from creditwindow.policy_ops import active_policy
from creditwindow.replay import first_scores
from creditwindow.sources import registered_sources
from creditwindow.terminal import JsonOption, console, err, fail, reach
from services.policy.control.document import PolicyDocument, PolicyError, load_policy, parse_policy
from shared.contracts import ScoreComputed
from shared.messaging.topic_io import read_to_end
from shared.settings import Settings

__all__ = ["TOLERANCE", "optimise", "render_report"]

TOLERANCE = 0.01  # the candidate's replay agrees with the optimiser within 1% on every figure
SCORES = "scores"


def _money(value: float) -> str:
    return f"{value:,.0f}"


def _figures_json(figures: Figures) -> dict[str, float]:
    return {
        "applications": figures.applications,
        "approvals": figures.approvals,
        "approval_rate": figures.approval_rate,
        "exposure": figures.exposure,
        "expected_loss": round(figures.expected_loss, 2),
        "expected_return": round(figures.expected_return, 2),
    }


def _summary(
    plan: Plan, active: PolicyDocument, source: str, active_figures: Mapping[str, Figures], replayed: Mapping[str, Figures], out: Path
) -> dict[str, Any]:
    differences = agreement(plan.figures, replayed)
    worst = max((value for row in differences.values() for value in row.values()), default=0.0)
    segments = {}
    for segment, option in sorted(plan.chosen.items()):
        was = active.budgets[segment]  # type: ignore[index]
        segments[segment] = {
            "option": option.label,
            "cutoff": {"active": active.cutoffs[segment], "candidate": option.cutoff},  # type: ignore[index]
            "budget": {
                "active": {"exposure": was.exposure, "expected_loss": was.expected_loss, "period": was.period},
                "candidate": {"exposure": option.budget.exposure, "expected_loss": option.budget.expected_loss, "period": option.budget.period},
                "share_of_demand": option.share,
            },
            "paced": option.paced,
            "active": _figures_json(active_figures.get(segment, Figures())),
            "optimiser": _figures_json(option.figures),
            "replay": _figures_json(replayed.get(segment, Figures())),
            "relative_difference": differences[segment],
        }
    return {
        "active": active.label,
        "candidate": plan.candidate.label,
        "source": source,
        "capital": plan.capital,
        "expected_loss_limit": plan.expected_loss_limit,
        "budgets": {"exposure": plan.budget_exposure, "expected_loss": plan.budget_expected_loss},
        "cutoffs": plan.settings.get("cutoffs", False),
        "options": sum(len(o) for o in plan.options.values()),
        "solver": plan.solver,
        "segments": segments,
        "total": {
            "active": _figures_json(active_figures.get("all", Figures())),
            "optimiser": _figures_json(plan.figures["all"]),
            "replay": _figures_json(replayed.get("all", Figures())),
            "relative_difference": differences["all"],
        },
        "agreement": {"tolerance": TOLERANCE, "max_relative_difference": worst, "within": worst <= TOLERANCE},
        "out": str(out),
    }


def render_report(summary: Mapping[str, Any]) -> str:
    """The Markdown report of an optimisation (`--report`): the candidate against the active policy,
    the limits, and the optimiser against the replay."""
    lines = [
        f"# Allocation: {summary['candidate']} proposed from {summary['active']}",
        "",
        f"- Scores: {summary['source']}.",
        f"- Limits per budget period: capital {_money(summary['capital'])} CNY of exposure, "
        f"expected loss {_money(summary['expected_loss_limit'])} CNY. The candidate's budgets hold "
        f"{_money(summary['budgets']['exposure'])} and {_money(summary['budgets']['expected_loss'])}.",
        f"- {summary['options']} options replayed ({'budgets and raised cut-offs' if summary['cutoffs'] else 'budgets'}); "
        f"solver (HiGHS): {summary['solver']}",
        f"- Candidate file: `{summary['out']}` (check it with `creditwindow simulate --policy`, "
        "apply it with `creditwindow policy apply`).",
        "",
        "## Per segment: active policy → candidate",
        "",
        "| segment | option | cut-off | budget exposure | budget expected loss | approvals | exposure granted | expected loss | expected return (CNY/yr) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [*summary["segments"].items(), ("all", summary["total"])]
    for segment, row in rows:
        a, c = row["active"], row["replay"]
        if segment == "all":
            option = cutoff = exposure = loss = ""
        else:
            option = row["option"]
            cutoff = f"{row['cutoff']['active']:g} → {row['cutoff']['candidate']:g}"
            budget = row["budget"]
            exposure = f"{_money(budget['active']['exposure'])} → {_money(budget['candidate']['exposure'])}"
            loss = f"{_money(budget['active']['expected_loss'])} → {_money(budget['candidate']['expected_loss'])}"
        lines.append(
            f"| {segment} | {option} | {cutoff} | {exposure} | {loss} | {a['approvals']} → {c['approvals']} "
            f"({a['approval_rate']:.1%} → {c['approval_rate']:.1%}) | {_money(a['exposure'])} → {_money(c['exposure'])} "
            f"| {_money(a['expected_loss'])} → {_money(c['expected_loss'])} | {_money(a['expected_return'])} → {_money(c['expected_return'])} |"
        )
    agreement_row = summary["agreement"]
    lines += [
        "",
        "## The optimiser against the replay of the candidate",
        "",
        "The candidate replayed on the same scores as `creditwindow simulate --policy` replays them:",
        "",
        "| segment | figure | optimiser | replay | relative difference |",
        "|---|---|---|---|---|",
    ]
    for segment, row in rows:
        for name in RELATIVE:
            lines.append(
                f"| {segment} | {name.replace('_', ' ')} | {_money(row['optimiser'][name])} | {_money(row['replay'][name])} "
                f"| {row['relative_difference'][name]:.4%} |"
            )
    verdict = "within" if agreement_row["within"] else "NOT within"
    lines += [
        "",
        f"Largest relative difference: {agreement_row['max_relative_difference']:.4%}, {verdict} "
        f"the {agreement_row['tolerance']:.0%} tolerance.",
        "",
        "In sample: budgets, cut-offs and any pacing forecast are fit to these scores and judged on them; "
        "the next period's applicants will differ.",
        "",
    ]
    return "\n".join(lines)


def _candidate_text(plan: Plan, summary: Mapping[str, Any]) -> str:
    header = (
        f"# Proposed by `creditwindow policy optimise` from {summary['active']} on {summary['source']}.\n"
        f"# Capital {_money(plan.capital)} CNY, expected-loss limit {_money(plan.expected_loss_limit)} CNY per budget period;\n"
        f"# expected return on those scores {_money(plan.figures['all'].expected_return)} CNY a year.\n"
        "# Check with `creditwindow simulate --policy FILE`; apply with `creditwindow policy apply FILE`.\n"
    )
    body = yaml.safe_dump(plan.candidate.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    return header + body


def optimise(
    capital: Annotated[int, typer.Option("--capital", min=0, help="Exposure all segments' budgets may hold per budget period, CNY.")],
    expected_loss_limit: Annotated[int, typer.Option("--expected-loss-limit", min=0, help="Expected loss all segments' budgets may hold per budget period, CNY.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the candidate policy (YAML).")],
    cutoffs: Annotated[bool, typer.Option("--cutoffs/--no-cutoffs", help="Also try raised cut-offs per segment (never lower ones).")] = False,
    source: Annotated[str, typer.Option("--source", help="Where the recorded scores come from: scores (credit.scores), or germancredit with the dev tooling.")] = SCORES,
    policy_path: Annotated[Path | None, typer.Option("--policy", help="Start from this policy file instead of the active policy on credit.policy.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Also write a Markdown report here.")] = None,
    levels: Annotated[int, typer.Option("--levels", min=2, max=50, help="Cut-offs tried per segment with --cutoffs.")] = DEFAULT_LEVELS,
    as_json: JsonOption = False,
) -> None:
    """Propose segment budgets (and cut-offs) that maximise expected return on the recorded scores within a capital and an expected-loss limit.

    Writes a candidate policy (one version newer; everything else as the active policy) and checks it: the recorded scores replayed through the candidate, as `simulate --policy` does, must agree with the optimiser within 1% (else exit status 1). Publishes nothing.
    """
    settings = Settings()
    sources = registered_sources()
    if source != SCORES and source not in sources:
        known = ", ".join([SCORES, *sorted(sources)])
        hint = " (it comes with the dev tooling: pip install -e '.[dev]')" if source == "germancredit" else ""
        fail(f"unknown source {source!r}{hint}; known here: {known}")
    given: PolicyDocument | None = None
    if policy_path is not None:
        try:
            given = load_policy(policy_path)
        except OSError as exc:
            fail(f"{policy_path}: {exc.strerror or exc}")
        except PolicyError as exc:
            fail(f"{policy_path} is not a valid policy: {exc}")
    columns = (TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=as_json) as progress:
        reading = progress.add_task("reading the policy and scores", total=None)

        def advance(batch: list, total: int) -> None:  # type: ignore[type-arg]
            progress.update(reading, total=total, advance=len(batch))

        async def read_active() -> tuple[PolicyDocument, str]:
            return await active_policy(settings)

        async def read_scores() -> list[ScoreComputed]:
            records = await read_to_end(settings, [settings.topics.scores], on_batch=advance)
            return [r.event for r in records if isinstance(r.event, ScoreComputed)]

        if given is not None:
            active, origin = given, str(policy_path)
        else:
            active, origin = reach(read_active, settings)
        if source == SCORES:
            scores = reach(read_scores, settings)
            where = f"{settings.topics.scores} ({len(scores):,} scores)"
        else:
            where, scores = sources[source](active, settings)
        progress.update(reading, total=1, completed=1)
        applications = len(first_scores(scores))
        if applications == 0:
            fail(f"no recorded scores in {where}: nothing to optimise on")
        paced = active.pacing.enabled
        per_segment = replays_per_segment(cutoffs, levels, DEFAULT_FRACTIONS, paced)
        trying = progress.add_task("replaying the options", total=per_segment * len(active.budgets))
        try:
            plan = optimise_plan(
                scores, active, capital=capital, expected_loss_limit=expected_loss_limit, cutoffs=cutoffs, levels=levels,
                on_step=lambda _: progress.advance(trying),
            )  # fmt: skip
        except OptimiseError as exc:
            fail(str(exc))
        progress.update(trying, total=progress.tasks[trying].completed)
        before = progress.add_task(f"deciding under {active.label}", total=applications)
        active_figures = replayed_figures(scores, active, on_each=lambda: progress.advance(before))
        after = progress.add_task(f"deciding under {plan.candidate.label}", total=applications)
        replayed = replayed_figures(scores, plan.candidate, on_each=lambda: progress.advance(after))
    summary = _summary(plan, active, where, active_figures, replayed, out)
    summary["active_source"] = origin
    text = _candidate_text(plan, summary)
    try:
        if parse_policy(text) != plan.candidate:
            fail("the candidate does not read back as written (a bug): not written")
    except PolicyError as exc:
        fail(f"the candidate does not validate (a bug): {exc}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(render_report(summary), encoding="utf-8")
        summary["report"] = str(report)
    within = summary["agreement"]["within"]
    if as_json:
        print(json.dumps(summary, ensure_ascii=False))
    else:
        _print(summary)
    if not within:
        raise typer.Exit(1)


def _print(summary: Mapping[str, Any]) -> None:
    console.print(
        f"{summary['active']} ({summary['active_source']}) -> candidate {summary['candidate']}, on {summary['source']}",
        highlight=False,
    )
    chosen = Table("segment", "option", "cut-off", "budget exposure", "budget expected loss", title="chosen per segment")
    for segment, row in summary["segments"].items():
        budget = row["budget"]
        chosen.add_row(
            segment, row["option"], f"{row['cutoff']['active']:g} -> {row['cutoff']['candidate']:g}",
            f"{_money(budget['active']['exposure'])} -> {_money(budget['candidate']['exposure'])}",
            f"{_money(budget['active']['expected_loss'])} -> {_money(budget['candidate']['expected_loss'])}",
        )  # fmt: skip
    console.print(chosen)
    console.print(
        f"budgets hold {_money(summary['budgets']['exposure'])} of capital {_money(summary['capital'])}, "
        f"{_money(summary['budgets']['expected_loss'])} of expected-loss limit {_money(summary['expected_loss_limit'])} "
        f"({summary['options']} options; {summary['solver']})",
        highlight=False,
    )
    rows = [*summary["segments"].items(), ("all", summary["total"])]
    versus = Table("segment", "approvals", "exposure", "expected loss", "expected return", title="active policy -> candidate (replayed)")
    for segment, row in rows:
        a, c = row["active"], row["replay"]
        versus.add_row(
            segment, f"{a['approvals']} -> {c['approvals']}", f"{_money(a['exposure'])} -> {_money(c['exposure'])}",
            f"{_money(a['expected_loss'])} -> {_money(c['expected_loss'])}", f"{_money(a['expected_return'])} -> {_money(c['expected_return'])}",
        )  # fmt: skip
    console.print(versus)
    check = Table("segment", "figure", "optimiser", "replay (simulate)", "relative difference", title="optimiser against the candidate's replay")
    for segment, row in rows:
        for name in RELATIVE:
            check.add_row(
                segment, name.replace("_", " "), _money(row["optimiser"][name]), _money(row["replay"][name]),
                f"{row['relative_difference'][name]:.4%}",
            )  # fmt: skip
    console.print(check)
    agreement_row = summary["agreement"]
    verdict = "[green]within[/]" if agreement_row["within"] else "[bold red]NOT within[/]"
    console.print(f"largest relative difference {agreement_row['max_relative_difference']:.4%}: {verdict} {agreement_row['tolerance']:.0%}")
    console.print(f"wrote {summary['out']}" + (f" and {summary['report']}" if "report" in summary else ""), highlight=False)
