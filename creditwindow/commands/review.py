"""`creditwindow review list | show REF | decide REF`: reviews by a person (PIPL art. 24).

Customers ask through upstream apps (`ReviewRequested` on `credit.review-requests`); the policy
service acknowledges each (`ReviewOpened` on `credit.review-results`: one review per decision,
however many requests). An operator
lists the reviews (those open longer than the policy's `customer_care.review_within` are marked
overdue), reads one with the decision's full explanation, and decides it: `--uphold`, or `--open
--limit N` (a new decision through the book, still under the regulatory caps), with a note the
customer reads. The decision is signed with the operator's key like a policy update and published
to `credit.operator-actions`: the fleet refuses an unsigned or forged one.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Group
from rich.table import Table

from creditwindow.commands.explain import explanation_renderables
from creditwindow.explaining import gather
from creditwindow.key_ops import signing_key
from creditwindow.operator_ops import Review, board, publish_action, read_reviews, signed_action
from creditwindow.policy_ops import active_policy
from creditwindow.terminal import JsonOption, console, fail, publishing_needs_yes, reach
from shared.contracts import ReviewDecided
from shared.references import normalise_reference
from shared.settings import Settings
from shared.signing import SigningRefused

__all__ = ["app"]

app = typer.Typer(help="Reviews by a person: list, show, decide (signed).", no_args_is_help=True)


async def _board(settings: Settings) -> tuple[dict[str, Review], object]:
    reviews = board(event for _, event in await read_reviews(settings))
    policy, _ = await active_policy(settings)
    return reviews, policy.customer_care.review_within


def _find(reviews: dict[str, Review], text: str) -> Review:
    reference = normalise_reference(text)
    if reference is None or reference not in reviews:
        fail(f"no review of {text}")
    return reviews[reference]


@app.command("list")
def list_reviews(
    every: Annotated[bool, typer.Option("--all", help="Concluded reviews too.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Reviews under way, the oldest first; overdue ones (open longer than the policy allows) marked."""
    settings = Settings()
    reviews, within = reach(lambda: _board(settings), settings)
    now = settings.clock().now()
    shown = sorted((r for r in reviews.values() if every or r.status != "upheld" and r.status != "overturned"), key=lambda r: r.requested_at)
    rows = [r.as_dict(now, within) for r in shown]  # type: ignore[arg-type]
    overdue = sum(1 for r in rows if r["overdue"])
    if as_json:
        print(json.dumps({"reviews": rows, "overdue": overdue, "review_within_hours": within.total_seconds() / 3600}, ensure_ascii=False))  # type: ignore[attr-defined]
        return
    table = Table(title=f"reviews ({overdue} overdue: open longer than {within})", title_justify="left")
    for column in ("reference", "customer", "status", "requested", "age (h)", "respond by", "overdue"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["reference"], r["customer_id"], r["status"], r["requested_at"], str(r["age_hours"]), r["respond_by"] or "-", "[red]OVERDUE[/]" if r["overdue"] else "")
    console.print(table)


@app.command("show")
def show(reference: Annotated[str, typer.Argument(help="The decision reference under review.")], as_json: JsonOption = False) -> None:
    """A review: the customer's statements, its state, and the decision's full explanation."""
    settings = Settings()
    reviews, within = reach(lambda: _board(settings), settings)
    review = _find(reviews, reference)
    explanation = reach(lambda: gather(settings, review.reference, check=True), settings)
    data = review.as_dict(settings.clock().now(), within)  # type: ignore[arg-type]
    if as_json:
        print(json.dumps({"review": data, "explanation": explanation.as_dict() if explanation else None}, ensure_ascii=False, default=str))
        return
    head = Table(show_header=False, title=f"review of {review.reference}", title_justify="left")
    for key in ("status", "customer_id", "requested_at", "respond_by", "overdue", "requests", "outcome", "decided_by"):
        head.add_row(key, str(data[key]))
    for statement in data["statements"]:
        head.add_row("statement", statement)
    console.print(Group(head, *(explanation_renderables(explanation) if explanation else ["the decision is not on credit.windows"])))


@app.command("decide")
def decide_review(
    reference: Annotated[str, typer.Argument(help="The decision reference under review.")],
    uphold: Annotated[bool, typer.Option("--uphold", help="The decision stands.")] = False,
    open_window: Annotated[bool, typer.Option("--open", help="Overturn it: open the window (a new decision, trigger review).")] = False,
    limit: Annotated[int | None, typer.Option("--limit", help="With --open: the limit, CNY (the regulatory caps still apply).")] = None,
    note: Annotated[str, typer.Option("--note", help="The reviewer's note: the customer reads it.")] = "",
    issued_by: Annotated[str, typer.Option(help="Who decides (recorded in the signed decision).")] = "operator",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Publish without asking.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Decide a review, signed with this operator's key: --uphold, or --open --limit N; --note for the customer."""
    settings = Settings()
    if uphold == open_window:
        fail("say --uphold or --open (one of them)")
    if open_window and not limit:
        fail("--open needs --limit N (CNY)")
    if uphold and limit:
        fail("--limit goes with --open only")
    publishing_needs_yes(as_json, yes)
    try:
        signing_key(settings)  # no key to sign with: say so before reading
    except SigningRefused as exc:
        fail(str(exc))
    reviews, _ = reach(lambda: _board(settings), settings)
    review = _find(reviews, reference)
    if review.opened is None:
        fail(f"the review of {review.reference} was not acknowledged by the fleet (no ReviewOpened): the request named no decision of its customer")
    if review.concluded is not None:
        fail(f"the review of {review.reference} is already concluded: {review.concluded.outcome} by {review.concluded.decided_by}")
    try:
        action = signed_action(
            ReviewDecided, settings, issued_by=issued_by, review_id=review.review_id, reference=review.reference,
            decision_id=review.opened.decision_id, customer_id=review.customer_id,
            outcome="upheld" if uphold else "overturned", limit=limit, note=note,
        )  # fmt: skip
    except ValidationError as exc:
        fail(f"not a valid review decision: {exc.errors(include_url=False)[0]['msg']}")
    what = "uphold" if uphold else f"open with a limit of {limit:,} CNY"
    if not as_json and not yes and not typer.confirm(f"sign and publish: {what} on review of {review.reference}?", default=False):
        fail("not published", code=1)
    offset = reach(lambda: publish_action(action, settings), settings)
    if as_json:
        print(json.dumps({"reference": review.reference, "outcome": action.outcome, "limit": limit, "topic": settings.topics.operator_actions, "offset": offset}))
        return
    console.print(f"[green]published[/] {action.outcome} for {review.reference} to {settings.topics.operator_actions}@{offset}, signed with key {action.key_id}", highlight=False)
