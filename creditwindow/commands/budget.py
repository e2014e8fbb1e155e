"""`creditwindow budget show`: reserved against the active policy's budget, per segment (in its
current period) and programme."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from creditwindow.policy_ops import active_policy
from creditwindow.terminal import JsonOption, console, reach, with_redis
from services.policy.windows.adapters.redis_book import RedisBook
from services.policy.windows.decisions import budgets_now
from services.policy.windows.model import Reserved
from services.policy.windows.periods import period_span
from shared.settings import Settings

__all__ = ["app"]

app = typer.Typer(help="Portfolio budgets per segment.", no_args_is_help=True)


@app.command("show")
def show(as_json: JsonOption = False) -> None:
    """Per segment: the budget period, exposure and expected loss reserved in it, the policy's budget, utilisation."""
    settings = Settings()
    policy, source = reach(lambda: active_policy(settings), settings)
    names = [p.name for p in policy.programmes]
    now = settings.clock().now()
    terms = budgets_now(policy, now)

    async def read(redis: Any) -> tuple[dict[str, Reserved], dict[str, int]]:
        book = RedisBook(redis, settings.redis_prefix)
        return await book.budgets([key for key, _ in terms.values()]), await book.programmes(names)

    reserved, programmes = with_redis(read, settings)
    rows = []
    for segment, limit in policy.budgets.items():
        used = reserved.get(terms[segment][0], Reserved())
        span = period_span(limit.period, now, policy.zone) if limit.period else None
        rows.append(
            {
                "segment": segment,
                "period": span.label if span else None,
                "period_kind": limit.period,
                "period_start": span.start.isoformat() if span else None,
                "period_end": span.end.isoformat() if span else None,
                "period_elapsed": round(span.elapsed(now), 4) if span else None,
                "reserved": used.exposure,
                "limit": limit.exposure,
                "utilisation": used.exposure / limit.exposure if limit.exposure else 1.0,
                "expected_loss_reserved": used.el_fen / 100,
                "expected_loss_limit": limit.expected_loss,
            }
        )
    for programme in policy.programmes:
        rows.append(
            {
                "segment": f"{programme.segment} ({programme.name})",
                "period": "programme" if programme.active(now) else "programme (not active now)",
                "period_kind": None,
                "period_start": programme.start.isoformat() if programme.start else None,
                "period_end": programme.end.isoformat() if programme.end else None,
                "period_elapsed": None,
                "reserved": programmes.get(programme.name, 0),
                "limit": programme.budget,
                "utilisation": programmes.get(programme.name, 0) / programme.budget if programme.budget else 1.0,
                "expected_loss_reserved": None,
                "expected_loss_limit": None,
            }
        )
    if as_json:
        print(json.dumps({"policy": policy.label, "source": source, "budgets": rows}))
        return
    table = Table(
        "segment",
        "period",
        "reserved",
        "limit",
        "utilisation",
        "EL reserved",
        "EL limit",
        title=f"budgets under {policy.label}",
    )
    for row in rows:
        period = row["period"] or "all time"
        if row["period_elapsed"] is not None:
            period = f"{period} ({row['period_kind']}, {row['period_elapsed']:.0%} gone)"
        table.add_row(
            row["segment"], period, f"{row['reserved']:,}", f"{row['limit']:,}", f"{row['utilisation']:.1%}",
            "" if row["expected_loss_reserved"] is None else f"{row['expected_loss_reserved']:,.2f}",
            "" if row["expected_loss_limit"] is None else f"{row['expected_loss_limit']:,}",
        )  # fmt: skip
    console.print(table)
