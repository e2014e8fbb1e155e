"""`creditwindow schema export DIR`: a JSON Schema per event, for upstream apps that only need a Kafka client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from creditwindow.terminal import console
from shared.contracts import EVENT_TYPES

__all__ = ["app"]

app = typer.Typer(help="Event schemas for upstream apps.", no_args_is_help=True)


@app.command("export")
def export(directory: Annotated[Path, typer.Argument(help="Where to write one JSON Schema per event.")]) -> None:
    """Write a JSON Schema per event type, for upstream apps that only need a Kafka client."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, model in sorted(EVENT_TYPES.items()):
        document = model.model_json_schema(mode="serialization")
        document["$id"] = f"creditwindow/{name}/v{model.SCHEMA_VERSION}"
        document["x-kafka"] = {"event_type_header": name, "schema_version": model.SCHEMA_VERSION}
        path = directory / f"{name}.v{model.SCHEMA_VERSION}.schema.json"
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
        console.print(f"wrote {path}")
