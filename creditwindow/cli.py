"""`creditwindow`: the operator's front door (typer + rich). Every command lives in `creditwindow.commands`.

Development tooling (`dev`, `demo`, `bench`, `faults`, `experiment`) and the scorecard's offline
tooling (`model train`, `model evaluate`) are not part of the runtime: they join this app as
plugins, through the `creditwindow.commands` entry points in pyproject.toml, each a
`register(app, groups)` function. An image with the runtime only shows the operators' commands.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import typer

from creditwindow.commands import (
    asyncapi,
    budget,
    cache,
    customer,
    dlq,
    explain,
    keys,
    limits,
    model,
    policy,
    review,
    run,
    schema,
    shadow,
    simulate,
    tail,
    topics,
)
from creditwindow.terminal import checked_settings, err

__all__ = ["app", "main"]

PLUGINS = "creditwindow.commands"
OURS = frozenset({"creditwindow", "devtools", "modelling", "services", "shared"})

app = typer.Typer(
    help="creditwindow: credit-line window decisions on Kafka, with the reasons told.",
    no_args_is_help=True,
    # A traceback's local variables would print settings and keys: never show them.
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _every_command(ctx: typer.Context) -> None:
    """Before any command: the settings are readable and safe for CW_ENVIRONMENT (else it ends, saying why)."""
    if ctx.invoked_subcommand == "keys":
        return  # `keys` checks them itself: `keys new` must run before a deployment has a ring
    checked_settings()

groups: dict[str, typer.Typer] = {
    "schema": schema.app,
    "limits": limits.app,
    "cache": cache.app,
    "budget": budget.app,
    "policy": policy.app,
    "dlq": dlq.app,
    "shadow": shadow.app,
    "asyncapi": asyncapi.app,
    "model": model.app,
    "topics": topics.app,
    "review": review.app,
    "customer": customer.app,
    "keys": keys.app,
}
app.command("run")(run.run)
app.command("explain")(explain.explain)
app.command("tail")(tail.tail)
app.command("simulate")(simulate.simulate)


def _load_plugins() -> list[str]:
    """Let installed tooling add its commands; a plugin whose extra is not installed is skipped with a note."""
    missing = []
    for plugin in sorted(entry_points(group=PLUGINS), key=lambda e: e.name):
        try:
            plugin.load()(app, groups)
        except ImportError as exc:
            module = plugin.value.split(":")[0]
            absent = exc.name is not None and (module == exc.name or module.startswith(f"{exc.name}."))
            if not absent and (exc.name or "").split(".")[0] in OURS:
                raise  # a bug in our own code, not a missing package or extra
            missing.append(f"{plugin.name} ({exc.name or exc})")
    return missing


_missing = _load_plugins()
for _name, _group in groups.items():
    app.add_typer(_group, name=_name)


def main() -> None:
    if _missing and len(sys.argv) > 1 and sys.argv[1] in ("--help", "-h"):
        err.print(f"not installed: {', '.join(_missing)} (install the extras: pip install -e '.[dev,model]')")
    app()
