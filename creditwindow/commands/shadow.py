"""`creditwindow shadow run | report`: a candidate policy live, beside the active one, without effects.

`shadow run --policy FILE` starts a shadow policy replica (`services.policy.shadow_app`): its own
consumer group on `credit.scores`, decisions to `credit.windows.shadow`, budgets kept in memory
(seeded read-only from the live book), no Redis writes, no dead letters, no sweeper, and no
notifications (the notification service reads only `credit.windows`).

`shadow report` joins the shadow's decisions with the live ones by application id
(`creditwindow.outcomes.compare`, pure).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from creditwindow.commands.policy import read_candidate
from creditwindow.outcomes import SegmentSummary, compare
from creditwindow.terminal import JsonOption, console, reach, service_settings
from shared.contracts import Decision
from shared.messaging.topic_io import read_to_end
from shared.settings import Settings

__all__ = ["app"]

app = typer.Typer(help="Run a candidate policy in shadow and compare it with the active one.", no_args_is_help=True)


@app.command("run")
def run(
    policy: Annotated[Path, typer.Option("--policy", "-p", help="The candidate policy (YAML).")],
    port: Annotated[int, typer.Option(help="HTTP port for /health and /metrics (0: a free port).")] = 0,
) -> None:
    """Run the candidate policy in shadow in this process, until Ctrl-C (start more for replicas)."""
    read_candidate(policy)  # refuse an invalid file with its field and reason before starting anything
    # Imported here, not at the top: other commands must not load a service.
    from services.policy.shadow_app import SERVICE as SHADOW
    from services.policy.shadow_app import create_shadow_app
    from shared.runtime import serve

    settings = service_settings()  # a shadow replica is a service: CW_ENVIRONMENT named
    console.print(
        f"shadow policy from {policy} on {settings.topics.scores} -> {settings.topics.shadow_windows} "
        f"(group {settings.topics.group(SHADOW)}); Ctrl-C stops it",
        highlight=False,
    )
    serve(create_shadow_app(settings, policy.resolve()), host=settings.http_host, port=port)


@app.command("report")
def report(
    show: Annotated[int, typer.Option(help="How many differing customers to list (all with --json).", min=0)] = 20,
    as_json: JsonOption = False,
) -> None:
    """Compare the shadow's decisions with the live ones on the same applications."""
    settings = Settings()

    async def read() -> tuple[list[Decision], list[Decision]]:
        live = await read_to_end(settings, [settings.topics.windows])
        shadow = await read_to_end(settings, [settings.topics.shadow_windows])
        return [r.event for r in live if isinstance(r.event, Decision)], [r.event for r in shadow if isinstance(r.event, Decision)]

    live, shadow = reach(read, settings)
    result = compare(live, shadow)
    policies = sorted({d.policy_version for d in shadow})
    if as_json:
        segments = sorted(set(result.live) | set(result.shadow))
        empty = SegmentSummary(0, 0, 0, 0.0)
        body = {
            "shadow_policies": policies,
            "joined": result.joined,
            "agreed": result.agreed,
            "agreement_rate": result.agreement_rate,
            "live_only": result.live_only,
            "shadow_only": result.shadow_only,
            "segments": {
                s: {side: {**asdict(book.get(s, empty)), "approval_rate": book.get(s, empty).approval_rate} for side, book in (("live", result.live), ("shadow", result.shadow))}
                for s in segments
            },
            "differences": [asdict(c) for c in result.differences],
        }
        print(json.dumps(body, ensure_ascii=False))
        return
    console.print(
        f"shadow {', '.join(policies) or '(no decisions yet)'} vs live on {result.joined} application(s): "
        f"[bold]{result.agreement_rate:.1%}[/] agree ({result.live_only} live only, {result.shadow_only} shadow only)",
        highlight=False,
    )
    table = Table("segment", "opened live", "opened shadow", "closed live", "closed shadow", "total limit live", "total limit shadow")
    empty = SegmentSummary(0, 0, 0, 0.0)
    for segment in sorted(set(result.live) | set(result.shadow), key=lambda s: (s == "all", s)):
        lv, sh = result.live.get(segment, empty), result.shadow.get(segment, empty)
        table.add_row(
            segment, f"{lv.opened:,}", f"{sh.opened:,}", f"{lv.applications - lv.opened:,}", f"{sh.applications - sh.opened:,}",
            f"{lv.total_limit:,}", f"{sh.total_limit:,}",
        )  # fmt: skip
    console.print(table)
    if result.differences and show:
        listing = Table("customer", "segment", "live", "shadow", "limit change", title=f"{len(result.differences)} decided differently")
        for change in result.differences[:show]:
            listing.add_row(change.customer_id, change.segment, change.before, change.after, f"{change.limit_delta:+,}")
        console.print(listing)
