"""`creditwindow cache rebuild [--check | --yes]`: the book rebuilt from `credit.windows`, compared or written."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from creditwindow.terminal import JsonOption, console, fail, reach, with_redis
from services.policy.rebuild import derive
from services.policy.redis_book import RedisBook
from shared.contracts import Decision
from shared.messaging.topic_io import TopicReader
from shared.settings import Settings

__all__ = ["app"]

app = typer.Typer(help="The Redis cache: derived state, rebuilt from credit.windows.", no_args_is_help=True)


@app.command("rebuild")
def rebuild(
    check: Annotated[bool, typer.Option("--check", help="Rebuild beside the live cache and compare; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Replace the live cache (stop the policy service first).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Rebuild current windows, budgets and decision records from credit.windows."""
    settings = Settings()

    async def read() -> list[Decision]:
        async with TopicReader(settings, [settings.topics.windows]) as reader:
            return [r.event for r in await reader.drain(idle_s=1.0, timeout_s=600) if isinstance(r.event, Decision)]

    decisions = reach(read, settings)
    derived = derive(decisions)
    if check:
        live = with_redis(lambda redis: RedisBook(redis, settings.redis_prefix).snapshot(), settings)
        ours, theirs = derived.comparable(), live.comparable()
        differences = sorted(k for k in ours if ours[k] != theirs[k])
        summary = {"decisions": len(decisions), "customers": len(derived.windows), "identical": not differences}
        if as_json:
            print(json.dumps({**summary, "differences": differences}))
        else:
            verdict = "[green]identical[/]" if not differences else f"[red]differs in {differences}[/]"
            console.print(f"{len(decisions)} decisions, {len(derived.windows)} customers: {verdict}")
        raise typer.Exit(0 if not differences else 1)
    if not yes:
        fail("this replaces the live cache: stop the policy service, then run with --yes (or use --check)")
    with_redis(lambda redis: RedisBook(redis, settings.redis_prefix).replace(derived), settings)
    console.print(f"rebuilt {len(derived.windows)} customers' windows from {len(decisions)} decisions")
