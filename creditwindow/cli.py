"""`creditwindow`: the operator's front door (typer + rich)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from creditwindow.platform import LocalPlatform, PlatformError
from shared.settings import Settings

__all__ = ["app", "main"]

app = typer.Typer(help="creditwindow: credit-line window decisions on Kafka, with the reasons told.", no_args_is_help=True)
dev = typer.Typer(help="The local platform: a real Kafka broker (KRaft) and Redis on 127.0.0.1.", no_args_is_help=True)
schema = typer.Typer(help="Event schemas for upstream apps.", no_args_is_help=True)
app.add_typer(dev, name="dev")
app.add_typer(schema, name="schema")

console = Console()
err = Console(stderr=True)

SERVICES = ("scoring", "policy", "notification")
JsonOption = Annotated[bool, typer.Option("--json", help="Print data as JSON.")]


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _platform() -> LocalPlatform:
    return LocalPlatform(Settings(), say=lambda line: console.print(line, highlight=False))


@dev.command("up")
def dev_up() -> None:
    """Start Kafka and Redis (idempotent), wait until they answer, create the topics."""
    try:
        _platform().up()
    except PlatformError as exc:
        fail(str(exc))


@dev.command("down")
def dev_down() -> None:
    """Stop the local Kafka and Redis (idempotent)."""
    _platform().down()


@dev.command("status")
def dev_status(as_json: JsonOption = False) -> None:
    """Where each part of the platform runs and whether it answers."""
    components = _platform().status()
    if as_json:
        print(json.dumps([c.__dict__ for c in components]))
    else:
        table = Table("part", "address", "answers", "pid", "")
        for c in components:
            table.add_row(c.name, c.address, "[green]yes[/]" if c.running else "[red]no[/]", str(c.pid or "-"), c.detail)
        console.print(table)
    if not all(c.running for c in components):
        raise typer.Exit(1)


@app.command("run")
def run(
    service: Annotated[str, typer.Argument(help="scoring | policy | notification")],
    port: Annotated[int | None, typer.Option(help="HTTP port for /health and /metrics (0: a free port).")] = None,
) -> None:
    """Run one service in this process (its own consumer group; start more for replicas)."""
    if service not in SERVICES:
        fail(f"unknown service {service!r}: choose one of {', '.join(SERVICES)}")
    module = importlib.import_module(f"services.{service}.app")
    module.main(port=port)


@schema.command("export")
def schema_export(directory: Annotated[Path, typer.Argument(help="Where to write one JSON Schema per event.")]) -> None:
    """Write a JSON Schema per event type, for upstream apps that only need a Kafka client."""
    from shared.contracts import EVENT_TYPES

    directory.mkdir(parents=True, exist_ok=True)
    for name, model in sorted(EVENT_TYPES.items()):
        document = model.model_json_schema(mode="serialization")
        document["$id"] = f"creditwindow/{name}/v{model.SCHEMA_VERSION}"
        document["x-kafka"] = {"event_type_header": name, "schema_version": model.SCHEMA_VERSION}
        path = directory / f"{name}.v{model.SCHEMA_VERSION}.schema.json"
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
        console.print(f"wrote {path}")


@app.command("demo")
def demo(count: Annotated[int | None, typer.Option(help="Applications to publish (default: all 1,000 rows).")] = None) -> None:
    """Run the whole fleet end to end on the local platform with the German Credit applications."""
    from creditwindow.demo import run_demo

    result = run_demo(count=count, console=console)
    if not result.complete:
        fail(
            f"only {len(result.decisions)} decisions and {len(result.notifications)} notifications "
            f"for {result.published} applications"
        )


def _mount_optional(name: str, module: str, help_text: str) -> None:
    try:
        sub = importlib.import_module(module).app
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith(module.split(".")[0]):
            return
        raise
    app.add_typer(sub, name=name, help=help_text)


_mount_optional("model", "creditwindow.model_cli", "Train, evaluate and watch the scorecard.")


def main() -> None:
    try:
        app()
    except PlatformError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(1)
