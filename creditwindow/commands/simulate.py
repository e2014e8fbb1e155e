"""`creditwindow simulate --policy FILE`: the recorded scores through a candidate policy, no side effects.

The scores on `credit.scores` are replayed (`creditwindow.replay`) once with the active policy and once
with the candidate, each on an empty book, and compared by segment (`creditwindow.outcomes`).
Nothing is published and Redis is not touched.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from creditwindow.commands.policy import read_candidate
from creditwindow.outcomes import SegmentSummary, changes, summarise
from creditwindow.policy_ops import active_policy
from creditwindow.replay import replay_scores
from creditwindow.terminal import JsonOption, console, err, reach
from services.policy.control.document import PolicyDocument
from shared.contracts import ScoreComputed
from shared.messaging.topic_io import read_to_end
from shared.settings import Settings

__all__ = ["simulate"]


def _pct(value: float) -> str:
    return f"{value:.1%}"


def simulate(
    policy: Annotated[Path, typer.Option("--policy", "-p", help="The candidate policy (YAML).")],
    show: Annotated[int, typer.Option(help="How many changed customers to list (all with --json).", min=0)] = 20,
    as_json: JsonOption = False,
) -> None:
    """Replay the recorded scores through a candidate policy and compare with the active one, by segment.

    Prints approval rate, total limit and expected loss before (active policy) and after (candidate), and the customers whose decision would change. Publishes nothing and writes nothing to Redis.
    """
    settings = Settings()
    _, candidate = read_candidate(policy)
    columns = (TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=as_json) as progress:
        reading = progress.add_task("reading credit.scores", total=None)

        def advance(batch: list, total: int) -> None:  # type: ignore[type-arg]
            progress.update(reading, total=total, advance=len(batch))

        async def read() -> tuple[PolicyDocument, str, list[ScoreComputed]]:
            active, source = await active_policy(settings)
            records = await read_to_end(settings, [settings.topics.scores], on_batch=advance)
            return active, source, [r.event for r in records if isinstance(r.event, ScoreComputed)]

        active, source, scores = reach(read, settings)
        progress.update(reading, total=max(1, progress.tasks[reading].completed), completed=max(1, progress.tasks[reading].completed))
        applications = len({s.application_id for s in scores})
        deciding = progress.add_task(f"deciding under {active.label}", total=applications)
        before = replay_scores(scores, active, on_each=lambda: progress.advance(deciding))
        trying = progress.add_task(f"deciding under {candidate.label}", total=applications)
        after = replay_scores(scores, candidate, on_each=lambda: progress.advance(trying))
    was, now, changed = summarise(before), summarise(after), changes(before, after)
    if as_json:
        body = {
            "active": active.label,
            "active_source": source,
            "candidate": candidate.label,
            "applications": applications,
            "segments": {
                segment: {
                    "before": {**asdict(was.get(segment, SegmentSummary(0, 0, 0, 0.0))), "approval_rate": was.get(segment, SegmentSummary(0, 0, 0, 0.0)).approval_rate},
                    "after": {**asdict(now.get(segment, SegmentSummary(0, 0, 0, 0.0))), "approval_rate": now.get(segment, SegmentSummary(0, 0, 0, 0.0)).approval_rate},
                }
                for segment in sorted(set(was) | set(now))
            },
            "changed": [asdict(c) for c in changed],
        }
        print(json.dumps(body, ensure_ascii=False))
        return
    table = Table(
        "segment", "applications", "approval rate", "total limit", "expected loss",
        title=f"{applications} recorded applications: before {active.label} ({source}) -> after {candidate.label}",
    )  # fmt: skip
    empty = SegmentSummary(0, 0, 0, 0.0)
    for segment in sorted(set(was) | set(now), key=lambda s: (s == "all", s)):
        b, a = was.get(segment, empty), now.get(segment, empty)
        table.add_row(
            segment, f"{b.applications:,}", f"{_pct(b.approval_rate)} -> {_pct(a.approval_rate)}",
            f"{b.total_limit:,} -> {a.total_limit:,}", f"{b.expected_loss:,.0f} -> {a.expected_loss:,.0f}",
        )  # fmt: skip
    console.print(table)
    console.print(f"{len(changed)} application(s) would be decided differently", highlight=False)
    if changed and show:
        listing = Table("customer", "segment", "before", "after", "limit change", title=f"the {min(show, len(changed))} largest changes")
        for change in changed[:show]:
            listing.add_row(change.customer_id, change.segment, change.before, change.after, f"{change.limit_delta:+,}")
        console.print(listing)
