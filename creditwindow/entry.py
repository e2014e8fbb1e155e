"""The `creditwindow` command's entry point (`python -m creditwindow` too).

`creditwindow run SERVICE` is how every service process starts. The full operator CLI
(`creditwindow.cli`) imports every command's module at start, and with them numpy and scipy (the
allocation optimiser), Jinja2 and Babel ("how we decide"), YAML and more: about 60 MiB of resident
memory that a service never uses. So `run` gets an app of its own with the same command and the same
check before it (`checked_settings`); every other command goes to the full CLI, unchanged.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

__all__ = ["main", "service_app"]


def service_app() -> typer.Typer:
    """The `run` command alone, behind the same settings check as every command of the full CLI."""
    import typer

    from creditwindow.commands.run import run
    from creditwindow.terminal import checked_settings

    app = typer.Typer(
        help="creditwindow: run one service in this process.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,  # a traceback's locals would print settings and keys
    )

    @app.callback()
    def _every_command() -> None:
        """Before the command: the settings are readable and safe for CW_ENVIRONMENT (else it ends, saying why)."""
        checked_settings()

    app.command("run")(run)
    return app


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        service_app()()
        return
    from creditwindow.cli import main as full_cli

    full_cli()
