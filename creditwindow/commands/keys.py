"""`creditwindow keys new | list | retire`: the operators' signing keys.

Operators sign policy updates and actions on customers with private keys of their own; the fleet
holds only their public keys (CW_OPERATOR_PUBLIC_KEYS, each with its retirement time), so no
replica can sign anything.

- `new ID` writes a key pair's private key to a file only its owner reads and prints its entry for
  CW_OPERATOR_PUBLIC_KEYS (the fleet's ConfigMap, and the operators' own settings);
- `list` shows the ring the fleet loads: each key, its retirement time (a signed retirement read
  from the log brings it forward) and whether it may sign now;
- `retire ID` signs a retirement of key ID with this operator's key and publishes it where every
  policy replica reads it, in order with the policy updates;
- `migrate --hmac-ring FILE` carries the history signed with the fleet's old shared HMAC ring over,
  once: every policy version the old fleet adopted and every suspension in force, verified with the
  old ring on this machine and signed again with this operator's key (docs/security.md, "Migration").
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from creditwindow.hmac_history import carried_over, read_old_ring
from creditwindow.key_ops import new_key, publish_retirement, ring_entry, signed_retirement, signing_key, write_key_file
from creditwindow.operator_ops import read_reviews, signed_action, suspensions_of
from creditwindow.policy_ops import ControlLog, control_log, signed_update
from creditwindow.terminal import JsonOption, YesOption, checked_settings, console, fail, publishing_needs_yes, reach
from services.policy.control.document import load_policy
from shared.contracts import CustomerSuspended, Event
from shared.messaging import topic_partitions
from shared.messaging.topic_io import Publisher, read_to_end
from shared.settings import Settings
from shared.signing import KEY_ID_PATTERN, SigningRefused, encode_key
from shared.wire import Record

__all__ = ["app"]

app = typer.Typer(help="Operators' signing keys: make a key pair, list the fleet's ring, retire a key (signed), carry the HMAC history over.", no_args_is_help=True)


@app.callback()
def _checked(ctx: typer.Context) -> None:
    """The settings are checked as before any command (creditwindow/cli.py), except for `keys new`:
    it makes the first key pair of a deployment whose ring is not set yet, and signs nothing."""
    if ctx.invoked_subcommand != "new":
        checked_settings()


def _moment(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r}: give a time with a zone, e.g. 2027-12-31T00:00:00+08:00")
    if moment.tzinfo is None:
        fail(f"{option} needs a time zone (e.g. +08:00 or Z)")
    return moment


@app.command("new")
def new(
    key_id: Annotated[str, typer.Argument(help="The key's id in the ring, e.g. ops-lin-2026.")],
    out: Annotated[Path | None, typer.Option("--out", help="Where to write the private key (default: ./ID.key); never overwritten.")] = None,
    retire_at: Annotated[str | None, typer.Option("--retire-at", help="When it retires (ISO 8601 with a zone; default: in 365 days).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Make a key pair: the private key to a file only you read (mode 0600), its ring entry printed."""
    if not re.match(KEY_ID_PATTERN, key_id):
        fail(f"{key_id!r} is not a key id: letters, digits, `.`, `_` and `-`, at most 64")
    path = out or Path(f"{key_id}.key")
    if path.exists():
        fail(f"{path} exists: a key file is never overwritten")
    now = Settings().clock().now().replace(microsecond=0)  # the settings are read, not checked (`_checked`)
    retires = _moment(retire_at, "--retire-at") if retire_at else now + timedelta(days=365)
    if retires <= now:
        fail("--retire-at is in the past")
    key = new_key(key_id)
    write_key_file(path, key)
    entry = ring_entry(key, retires)
    if as_json:
        print(json.dumps({"key_id": key_id, "public_key": encode_key(key.public), "retire_at": retires.isoformat(), "private_key_file": str(path)}))
        return
    console.print(f"wrote the private key of {key_id} to {path} (mode 0600): keep it to yourself; CW_OPERATOR_PRIVATE_KEY_FILE names it", highlight=False)
    console.print("add this entry to CW_OPERATOR_PUBLIC_KEYS (the fleet's ConfigMap creditwindow-operator-keys, and your own settings):", highlight=False)
    print(entry)


@app.command("list")
def list_keys(as_json: JsonOption = False) -> None:
    """The ring the fleet loads: each key's retirement (signed retirements on the log applied) and whether it may sign now."""
    settings = Settings()
    control = reach(lambda: control_log(settings), settings)
    now = settings.clock().now()
    configured = settings.operator_ring
    retired_by = {retirement.key_id: offset for retirement, offset in control.retirements}
    try:
        mine: str | None = settings.operator_key().key_id
    except SigningRefused:
        mine = None
    rows = [
        {
            "key_id": key_id,
            "public_key": encode_key(key.public),
            "retire_at": key.retire_at.isoformat(),
            "configured_retire_at": configured.keys[key_id].retire_at.isoformat(),
            "retired_on_log": f"{settings.topics.policy}@{retired_by[key_id]}" if key_id in retired_by else None,
            "may_sign": now <= key.retire_at,
            "yours": key_id == mine,
        }
        for key_id, key in sorted(control.signatures.ring.keys.items())
    ]
    if as_json:
        print(json.dumps({"keys": rows}))
        return
    table = Table(title=f"{len(rows)} operator keys in the fleet's ring", title_justify="left")
    for column in ("key", "retires at", "retired by", "may sign now", "yours"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["key_id"], r["retire_at"], r["retired_on_log"] or "its setting", "yes" if r["may_sign"] else "no", "yes" if r["yours"] else "")
    console.print(table)


@app.command("retire")
def retire(
    key_id: Annotated[str, typer.Argument(help="The key to retire.")],
    at: Annotated[str | None, typer.Option("--at", help="From when it signs nothing (ISO 8601 with a zone; default: now; never in the past).")] = None,
    issued_by: Annotated[str, typer.Option(help="Who retires it (recorded in the signed retirement).")] = "operator",
    yes: YesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Retire key ID, signed with your key (CW_OPERATOR_PRIVATE_KEY_FILE), on the log every policy replica reads."""
    settings = Settings()
    publishing_needs_yes(as_json, yes)
    if key_id not in settings.operator_public_keys:
        fail(f"key {key_id!r} is not in the fleet's ring (CW_OPERATOR_PUBLIC_KEYS has {sorted(settings.operator_public_keys)})")
    when = _moment(at, "--at") if at else None
    if when is not None and when < settings.clock().now():
        fail("--at is in the past: a retirement never reaches back (a key that leaked is taken out of the ring)")
    try:
        retirement = signed_retirement(settings, retired_key_id=key_id, retire_at=when, issued_by=issued_by)
    except SigningRefused as exc:
        fail(str(exc))
    question = f"sign with {retirement.key_id} and publish: key {key_id} signs nothing from {retirement.retire_at.isoformat()}?"
    if not as_json and not yes and not typer.confirm(question, default=False):
        fail("not published", code=1)
    offset = reach(lambda: publish_retirement(retirement, settings), settings)
    if as_json:
        print(json.dumps({"retired": key_id, "retire_at": retirement.retire_at.isoformat(), "signed_with": retirement.key_id, "topic": settings.topics.policy, "offset": offset}))
        return
    console.print(
        f"[green]published[/] retirement of {key_id} from {retirement.retire_at.isoformat()} to {settings.topics.policy}@{offset}, "
        f"signed with key {retirement.key_id}",
        highlight=False,
    )


async def _history(settings: Settings) -> tuple[ControlLog, list[Event], list[tuple[Record, Event]], list[Event]]:
    """The control log, the policy topic, customer care's topics as the fleet reads them, and the old
    fleet's operator actions: on the retired `credit.reviews` where the old fleet wrote them (when it
    still exists) and any the split's migration copied onto `credit.operator-actions`."""
    control = await control_log(settings)
    policy_log = [item.event for item in await read_to_end(settings, [settings.topics.policy]) if item.event is not None]
    reviews = await read_reviews(settings)
    retired = settings.topics.retired_reviews
    old = [item.event for item in await read_to_end(settings, [retired]) if item.event is not None] if (await topic_partitions(settings, [retired]))[retired] else []
    return control, policy_log, reviews, old + [event for _, event in reviews]


async def _publish(settings: Settings, events: list[tuple[str, Event]]) -> None:
    async with Publisher(settings) as publisher:
        for topic, event in events:  # in order: the versions as the old fleet adopted them
            await (await publisher.send(topic, event))


@app.command("migrate")
def migrate(
    hmac_ring: Annotated[Path, typer.Option("--hmac-ring", help='The old ring, JSON {"key id": "key"} as CW_POLICY_SIGNING_KEYS held it.')],
    yes: YesOption = False,
    as_json: JsonOption = False,
) -> None:
    """Carry the HMAC-signed history over, once: each policy version the old fleet adopted and each suspension in force, signed again with your key."""
    settings = Settings()
    publishing_needs_yes(as_json, yes)
    try:
        ring = read_old_ring(hmac_ring)
        signing_key(settings)
    except (OSError, ValueError) as exc:
        fail(str(exc))
    control, policy_log, reviews, actions_log = reach(lambda: _history(settings), settings)
    now = settings.clock().now()
    carried = carried_over(policy_log, actions_log, ring, namespace=settings.topic_namespace, policy=load_policy(settings.policy_path), now=now)
    # What operators' keys carry already (a second run, or versions signed since) is not signed again.
    versions = [(old, document) for old, document in carried.versions if document.version > control.active.version]
    suspended = suspensions_of(reviews, control.signatures, control.active, now)
    suspensions = [old for old in carried.suspensions if old.customer_id not in suspended]
    events: list[tuple[str, Event]] = [(settings.topics.policy, signed_update(old.document, settings, issued_by=old.issued_by)) for old, _ in versions]
    events += [
        (settings.topics.operator_actions, signed_action(
            CustomerSuspended, settings, issued_by=old.issued_by, customer_id=old.customer_id, reason=old.reason, until=old.until, note=old.note,
        ))  # fmt: skip
        for old in suspensions
    ]
    labels = [document.label for _, document in versions]
    if not as_json:
        console.print(f"policy versions to sign again: {', '.join(labels) or 'none'}; suspensions in force: {len(suspensions)}", highlight=False)
    if events and not as_json and not yes and not typer.confirm(f"sign {len(events)} events with your key and publish them?", default=False):
        fail("not published", code=1)
    if events:
        reach(lambda: _publish(settings, events), settings)
    if as_json:
        print(json.dumps({"versions": labels, "suspensions": [old.customer_id for old in suspensions]}))
        return
    console.print(f"[green]published[/] {len(labels)} policy versions and {len(suspensions)} suspensions, signed with your key", highlight=False)
