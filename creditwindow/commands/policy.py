"""`creditwindow policy show | diff FILE | apply FILE | explain`: the policy the fleet runs, changing it
safely, and publishing it as "how we decide" for customers.

`apply` validates the file (naming the field and why when it is wrong), checks it the way every
policy replica will (same name, newer version), shows the diff, signs it and publishes the signed
`PolicyUpdated` to `credit.policy`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.syntax import Syntax

from creditwindow.commands.optimise import optimise
from creditwindow.how_we_decide import render_markdown
from creditwindow.policy_ops import (
    active_policy,
    check_as_the_fleet,
    control_log,
    diff_documents,
    publish_update,
    signed_update,
)
from creditwindow.terminal import JsonOption, console, fail, publishing_needs_yes, reach
from services.policy.control.checks import Refused
from services.policy.control.document import PolicyDocument, PolicyError, parse_policy
from shared.contracts import DEFAULT_LOCALE
from shared.reasons import LOCALES
from shared.settings import Settings
from shared.signing import SigningRefused

__all__ = ["app", "read_candidate"]

app = typer.Typer(help="Show, diff and apply signed policy versions.", no_args_is_help=True)
app.command("optimise")(optimise)

FileArgument = Annotated[Path, typer.Argument(help="A policy document (YAML).", exists=False)]


def read_candidate(path: Path) -> tuple[str, PolicyDocument]:
    """The file's text and its validated document; ends the command with the field and reason if invalid."""
    if not path.is_file():
        fail(f"{path}: no such file")
    text = path.read_text(encoding="utf-8")
    try:
        return text, parse_policy(text)
    except PolicyError as exc:
        fail(f"{path} is not a valid policy: {exc}")


def _print_diff(lines: list[str]) -> None:
    if not lines:
        console.print("no difference")
        return
    console.print(Syntax("\n".join(lines), "diff", theme="ansi_dark", background_color="default", word_wrap=True))


@app.command("show")
def show(as_json: JsonOption = False) -> None:
    """The active policy: the shipped default replaced by each valid signed update on credit.policy."""
    settings = Settings()
    policy, source = reach(lambda: active_policy(settings), settings)
    document = policy.model_dump(mode="json")
    if as_json:
        print(json.dumps({"policy": policy.label, "source": source, "document": document}, ensure_ascii=False))
        return
    console.print(f"[bold]{policy.label}[/] from {source}", highlight=False)
    console.print(Syntax(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), "yaml", background_color="default", word_wrap=True))


@app.command("diff")
def diff(path: FileArgument, as_json: JsonOption = False) -> None:
    """Validate FILE and show how it differs from the active policy (normalised, field by field)."""
    settings = Settings()
    _, candidate = read_candidate(path)
    active, source = reach(lambda: active_policy(settings), settings)
    lines = diff_documents(active, candidate)
    if as_json:
        print(json.dumps({"active": active.label, "source": source, "candidate": candidate.label, "diff": lines}))
        return
    console.print(f"active {active.label} ({source}) -> candidate {candidate.label}", highlight=False)
    _print_diff(lines)


@app.command("apply")
def apply(
    path: FileArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Publish without asking.")] = False,
    issued_by: Annotated[str, typer.Option(help="Who applies it (recorded in the signed update).")] = "operator",
    as_json: JsonOption = False,
) -> None:
    """Validate FILE, show the diff, sign it and publish it to credit.policy (every replica applies it)."""
    settings = Settings()
    publishing_needs_yes(as_json, yes)
    text, candidate = read_candidate(path)
    try:
        update = signed_update(text, settings, issued_by=issued_by)  # no key, or a retired one: say so before reading
    except SigningRefused as exc:
        fail(str(exc))
    control = reach(lambda: control_log(settings), settings)
    active, source = control.active, control.source
    # The same check every replica runs (retirements read from the log included): refusing here beats a dead letter there.
    verdict = check_as_the_fleet(update, control, settings)
    if isinstance(verdict, Refused):
        fail(f"{path} would be refused by the fleet ({verdict.error_type}): {verdict.error}")
    lines = diff_documents(active, candidate)
    if not as_json:
        console.print(f"active {active.label} ({source}) -> {candidate.label}", highlight=False)
        _print_diff(lines)
        if not yes and not typer.confirm(f"sign and publish {candidate.label}?", default=False):
            fail("not applied", code=1)
    offset = reach(lambda: publish_update(update, settings), settings)
    if as_json:
        print(json.dumps({"applied": candidate.label, "previous": active.label, "topic": settings.topics.policy, "offset": offset, "diff": lines}))
        return
    console.print(f"[green]published[/] {candidate.label} to {settings.topics.policy}@{offset}, signed with key {update.key_id}", highlight=False)


@app.command("explain")
def explain(
    locale: Annotated[str, typer.Option("--locale", help="zh-CN or en.")] = DEFAULT_LOCALE,
    path: Annotated[Path | None, typer.Option("--file", help="Explain this policy file instead of the active policy.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the Markdown here instead of printing it.")] = None,
) -> None:
    """"How we decide" as Markdown, from the active policy (cut-offs, knock-outs, caps, programmes, pauses, rights)."""
    if locale not in LOCALES:
        fail(f"--locale {locale!r}: zh-CN or en")
    if path is not None:
        _, document = read_candidate(path)
    else:
        settings = Settings()
        document, _ = reach(lambda: active_policy(settings), settings)
    markdown = render_markdown(document, locale)
    if output is not None:
        output.write_text(markdown, encoding="utf-8")
        console.print(f"wrote {output} ({document.label}, {locale})", highlight=False)
        return
    print(markdown, end="")
