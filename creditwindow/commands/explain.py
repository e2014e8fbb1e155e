"""`creditwindow explain REF [--verify] [--json]`: any decision on credit.windows, explained on request.

REF is the reference the customer quotes (`CW-XXXX-XXXX-XXXX`, any case, dashes or none) or the
decision id. Shown: the outcome and category, the reasons with what to do, the recourse, the limit's
basis with every bound and its value, the rules of the policy version that decided (threshold, the
customer's figure, passed or not), the model, and the message as it was sent. `--verify` runs the
recorded score through the recorded policy version (and the points through the recorded model) and
says whether that reproduces the decision.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table

from creditwindow.explaining import gather
from creditwindow.terminal import JsonOption, console, fail, reach
from services.policy.record.explanation import Explanation
from shared.settings import Settings

__all__ = ["explain", "explanation_renderables"]


def _table(title: str, columns: tuple[str, ...], rows: list[tuple[object, ...]]) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    return table


def explanation_renderables(x: Explanation) -> list[RenderableType]:
    """The explanation as rich tables, in the order an operator reads it."""
    head = Table(show_header=False, box=None)
    verdict = f"opened: {x.limit:,} CNY at {x.apr:.2%} APR until {x.valid_until}" if x.outcome == "opened" else f"closed: {x.category} / {x.reason}"
    for key, value in (
        ("reference", x.reference), ("decision", x.decision_id), ("customer", x.customer_id), ("application", x.application_id),
        ("decided at", x.decided_at), ("trigger", x.trigger), ("outcome", verdict), ("why", x.reason_text or ""),
        ("policy", x.policy_version), ("model", x.model_id or "none (not scored)"),
        ("score", f"{x.score['points']} points, grade {x.score['grade']}, PD {x.score.get('pd')}, cut-off {x.score['cutoff']}" if x.score else "-"),
        ("threshold", json.dumps(x.threshold) if x.threshold else "-"), ("inputs", x.inputs),
    ):  # fmt: skip
        head.add_row(key, str(value))
    if x.review:
        head.add_row("on review of", f"{x.review['reviewed_reference']}: {x.review['note'] or ''}")
    if x.closes_reference:
        head.add_row("closes", x.closes_reference)
    parts: list[RenderableType] = [Panel(head, title=f"decision {x.reference}", title_align="left")]
    if x.reasons:
        parts.append(_table("reasons", ("reason", "points lost", "what to do", "time to show"), [(r["text"], r["points_lost"], r["advice"], r["typical"]) for r in x.reasons]))
    if x.recourse:
        parts.append(_table("recourse", ("change", "now", "target", "points"), [(r["text"], r["current"], r["target"], r["points_gain"]) for r in x.recourse]))
    if x.bounds:
        parts.append(_table("limit basis", ("bound", "value (CNY)", "rule", "binding"), [(b.bound, f"{b.amount:,}", b.rule, "yes" if b.binding else "") for b in x.bounds]))
    if x.rules:
        parts.append(_table("rules, in order", ("rule", "threshold", "customer", "passed"), [(r.rule, r.threshold, r.value, "yes" if r.passed else "NO") for r in x.rules]))
    for message in x.messages:
        parts.append(Panel(f"[bold]{message['title']}[/]\n\n{message['body']}", title=f"as sent ({message['channel']}, {message['locale']}, {message['sent_at']})", title_align="left"))
    if not x.messages:
        parts.append("no message found on credit.notifications for this decision")
    if x.verification is not None:
        v = x.verification
        checks = _table(f"verification: {v.verdict}" + (f" ({v.note})" if v.note else ""), ("what", "recorded", "recomputed", "same"),
                        [(c.what, c.recorded, c.recomputed, "yes" if c.same else "NO") for c in v.checks])  # fmt: skip
        parts.append(checks)
    return parts


def explain(
    reference: Annotated[str, typer.Argument(help="The decision reference (CW-XXXX-XXXX-XXXX) or the decision id.")],
    check: Annotated[bool, typer.Option("--verify", help="Run the recorded inputs through the recorded policy version and model.")] = False,
    as_json: JsonOption = False,
) -> None:
    """A decision explained: outcome, reasons, limit basis, rules, model, and the message as sent."""
    settings = Settings()
    explanation = reach(lambda: gather(settings, reference, check=check), settings)
    if explanation is None:
        if as_json:
            print(json.dumps({"reference": reference, "error": "not_found"}))
            raise typer.Exit(1)
        fail(f"no decision {reference} on {settings.topics.windows}")
    if as_json:
        print(json.dumps(explanation.as_dict(), ensure_ascii=False, default=str))
    else:
        console.print(Group(*explanation_renderables(explanation)))
    if check and explanation.verification is not None and explanation.verification.verdict == "differs":
        raise typer.Exit(2)
