"""`creditwindow customer suspend | lift | suspensions`: suspending one customer's right to apply (暂停部分用户的申请权限).

A suspension names a reason from a fixed list (for audit; the customer reads the same neutral text
whatever it is) and may end by itself (`--until`). It is signed with the operator's key like a policy
update and published to `credit.operator-actions`; every policy replica applies it: the customer's open
window closes and their applications close as `strategy` until it ends or is lifted.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from creditwindow.operator_ops import publish_action, read_reviews, signed_action, suspensions_of
from creditwindow.policy_ops import control_log
from creditwindow.terminal import JsonOption, console, fail, publishing_needs_yes, reach
from shared.contracts import SUSPENSION_REASONS, CustomerSuspended, SuspensionLifted
from shared.settings import Settings
from shared.signing import SigningRefused

__all__ = ["app"]

app = typer.Typer(help="Suspend and lift a customer's right to apply (signed).", no_args_is_help=True)


def _until(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--until {text!r}: give a date or a time, e.g. 2026-12-31 or 2026-12-31T18:00+08:00")
    if moment.tzinfo is None:
        fail("--until needs a time zone (e.g. +08:00 or Z), or give a date alone")
    return moment


def _sign_and_publish(model: type[CustomerSuspended] | type[SuspensionLifted], settings: Settings, yes: bool, question: str, **fields: object) -> tuple[object, int]:
    try:
        action = signed_action(model, settings, **fields)  # type: ignore[arg-type]
    except SigningRefused as exc:
        fail(str(exc))
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        fail(f"{'.'.join(map(str, error['loc']))}: {error['msg']}")
    if not yes and not typer.confirm(question, default=False):
        fail("not published", code=1)
    return action, reach(lambda: publish_action(action, settings), settings)


@app.command("suspend")
def suspend(
    customer: Annotated[str, typer.Argument(help="Pseudonymous customer id.")],
    reason: Annotated[str, typer.Option("--reason", help=f"One of: {', '.join(SUSPENSION_REASONS)}.")],
    until: Annotated[str | None, typer.Option("--until", help="When it ends by itself (ISO 8601 with a zone; a date: midnight China time).")] = None,
    note: Annotated[str, typer.Option("--note", help="For operators only; never told to the customer.")] = "",
    issued_by: Annotated[str, typer.Option(help="Who suspends (recorded in the signed action).")] = "operator",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Publish without asking.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Suspend a customer: their open window closes, their applications close as strategy."""
    settings = Settings()
    if reason not in SUSPENSION_REASONS:
        fail(f"--reason {reason!r}: one of {', '.join(SUSPENSION_REASONS)}")
    if until is not None and len(until) == 10:
        until = f"{until}T00:00:00+08:00"  # a date alone: from that day on, China time
    ends = _until(until)
    if ends is not None and ends <= settings.clock().now():
        fail("--until is in the past")
    publishing_needs_yes(as_json, yes)
    action, offset = _sign_and_publish(
        CustomerSuspended, settings, yes or as_json, f"sign and publish: suspend {customer} ({reason}) until {ends or 'lifted'}?",
        issued_by=issued_by, customer_id=customer, reason=reason, until=ends, note=note,
    )  # fmt: skip
    if as_json:
        print(json.dumps({"customer_id": customer, "suspended": True, "reason": reason, "until": ends.isoformat() if ends else None, "offset": offset}))
        return
    console.print(f"[green]published[/] suspension of {customer} to {settings.topics.operator_actions}@{offset}, signed with key {action.key_id}", highlight=False)  # type: ignore[attr-defined]


@app.command("lift")
def lift(
    customer: Annotated[str, typer.Argument(help="Pseudonymous customer id.")],
    note: Annotated[str, typer.Option("--note", help="For operators only.")] = "",
    issued_by: Annotated[str, typer.Option(help="Who lifts it (recorded in the signed action).")] = "operator",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Publish without asking.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Lift a customer's suspension: their next application is decided as any other."""
    settings = Settings()
    publishing_needs_yes(as_json, yes)
    action, offset = _sign_and_publish(
        SuspensionLifted, settings, yes or as_json, f"sign and publish: lift the suspension of {customer}?",
        issued_by=issued_by, customer_id=customer, note=note,
    )  # fmt: skip
    if as_json:
        print(json.dumps({"customer_id": customer, "suspended": False, "offset": offset}))
        return
    console.print(f"[green]published[/] lifting for {customer} to {settings.topics.operator_actions}@{offset}, signed with key {action.key_id}", highlight=False)  # type: ignore[attr-defined]


@app.command("suspensions")
def suspensions(as_json: JsonOption = False) -> None:
    """Customers suspended now (verified actions only, as every policy replica sees them)."""
    settings = Settings()
    now = settings.clock().now()
    found = reach(lambda: _suspended(settings, now), settings)
    rows = [
        {"customer_id": s.customer_id, "reason": s.reason, "since": s.since.isoformat(), "until": s.until.isoformat() if s.until else None, "issued_by": s.issued_by}
        for s in sorted(found.values(), key=lambda s: s.since)
    ]
    if as_json:
        print(json.dumps({"suspended": rows}))
        return
    table = Table(title=f"{len(rows)} customers suspended", title_justify="left")
    for column in ("customer", "reason", "since", "until", "by"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["customer_id"], r["reason"], r["since"], r["until"] or "until lifted", r["issued_by"])
    console.print(table)


async def _suspended(settings: Settings, now: datetime) -> dict:  # type: ignore[type-arg]
    control = await control_log(settings)
    return suspensions_of(await read_reviews(settings), control.signatures, control.active, now)
