"""`creditwindow asyncapi export DIR`: an AsyncAPI 3.0 document per service, generated from the code.

Each service's app is built in this process exactly as it runs (nothing connects) and FastStream
writes its specification: every channel, operation and message payload (the event JSON Schemas).
`policy-shadow` is a shadow policy replica (its decisions go to the shadow topic).
The documents use the production topic names (no namespace) and the local broker's address.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from creditwindow.terminal import console
from shared.runtime import FleetApp
from shared.settings import REPO_ROOT, Settings

__all__ = ["DOCS_DIR", "SERVICES", "app", "build_app", "document", "export"]

app = typer.Typer(help="AsyncAPI documents of the services, generated from the code.", no_args_is_help=True)

DOCS_DIR = REPO_ROOT / "docs" / "asyncapi"
SERVICES = ("scoring", "policy", "notification", "policy-shadow")


def _settings(**overrides: Any) -> Settings:
    # Fixed values, so the documents do not depend on who generates them or where.
    return Settings(kafka_bootstrap_servers="127.0.0.1:9092", topic_namespace="", log_format="json", log_level="WARNING", **overrides)


def build_app(service: str) -> FleetApp:
    """The service's app as it runs, built without connecting to anything."""
    # Imported here, not at the top: `creditwindow run scoring` must not load the other services.
    from services.notification.app import create_app as notification
    from services.policy.app import create_app as policy
    from services.policy.shadow_app import create_shadow_app as shadow
    from services.scoring.app import create_app as scoring

    factories: dict[str, Callable[[], FleetApp]] = {
        "scoring": lambda: scoring(_settings()),
        "policy": lambda: policy(_settings()),
        "notification": lambda: notification(_settings()),
        "policy-shadow": lambda: shadow(_settings(), _settings().policy_path),
    }
    if service not in factories:
        raise ValueError(f"unknown service {service!r}: one of {', '.join(SERVICES)}")
    return factories[service]()


def document(service: str) -> dict[str, Any]:
    """The service's AsyncAPI document as JSON-ready data, its maps in a stable order."""
    data: dict[str, Any] = build_app(service).schema.to_specification().to_jsonable()
    # FastStream lists publishers in no fixed order; sorted maps keep regenerated documents diffable.
    for parent, key in ((data, "channels"), (data, "operations"), (data.get("components", {}), "messages"), (data.get("components", {}), "schemas")):
        if key in parent:
            parent[key] = dict(sorted(parent[key].items()))
    return data


def export(directory: Path) -> list[Path]:
    """Write `<service>.asyncapi.json` for every service; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for service in SERVICES:
        path = directory / f"{service}.asyncapi.json"
        path.write_text(json.dumps(document(service), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


@app.command("export")
def export_command(directory: Annotated[Path, typer.Argument(help="Where to write the documents.")] = DOCS_DIR) -> None:
    """(Re)generate the AsyncAPI document of every service (default: docs/asyncapi)."""
    for path in export(directory):
        console.print(f"wrote {path}", highlight=False)
