"""`creditwindow cache rebuild [--check | --yes]`: the book rebuilt from `credit.windows` and
`credit.drawdowns`, compared or written.

`--yes` runs the fleet's own rebuild protocol (`services.policy.record.adapters.recovery`): safe while the policy
service runs, which waits (not ready) under the fence and resumes on the new book.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated

import typer
from redis.asyncio import Redis

from creditwindow.terminal import JsonOption, console, fail, reach, with_redis
from services.policy.record.adapters.recovery import read_book_log, rebuild_into
from services.policy.record.adapters.redis_references import RedisReferences
from services.policy.record.rebuild import derive
from services.policy.windows.adapters.redis_book import RedisBook
from shared.settings import Settings

__all__ = ["app"]

app = typer.Typer(help="The Redis cache: derived state, rebuilt from credit.windows and credit.drawdowns.", no_args_is_help=True)


async def _install(book: RedisBook, settings: Settings) -> str:
    generation = uuid.uuid4().hex
    clock = settings.clock()
    references = RedisReferences(book.redis, settings.redis_prefix, clock)  # the references to decisions too
    await rebuild_into(book, settings, generation, grace_s=settings.book_rebuild_grace_s, clock=clock, references=references)
    return generation


@app.command("rebuild")
def rebuild(
    check: Annotated[bool, typer.Option("--check", help="Rebuild beside the live cache and compare; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Replace the live cache (safe while the fleet runs: it waits under a fence).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Rebuild current windows, budgets, decision records and balances from the log."""
    settings = Settings()

    if yes and not check:

        async def rebuild(redis: Redis) -> str | None:
            book = RedisBook(redis, settings.redis_prefix, retention_ms=settings.book_retention_ms)
            return await book.guard.under_fence(
                f"operator-{uuid.uuid4().hex[:8]}",
                lambda: _install(book, settings),
            )

        began = time.monotonic()
        generation = with_redis(rebuild, settings)
        if generation is None:
            fail("another rebuild holds the fence: try again when it is done")
        console.print(f"rebuilt the book from {settings.topics.windows} in {time.monotonic() - began:.1f} s (generation {generation})")
        return
    decisions, movements = reach(lambda: read_book_log(settings), settings)
    derived = derive(decisions, movements=movements)
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
    fail("say what to do: --check compares a rebuild with the live cache, --yes replaces it")
