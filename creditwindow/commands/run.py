"""`creditwindow run SERVICE`: one service in this process (start more processes for replicas)."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from creditwindow.terminal import fail, service_settings
from shared.environments import UnsafeEnvironment

__all__ = ["SERVICES", "run"]

SERVICES = ("scoring", "policy", "notification")


def run(
    service: Annotated[str, typer.Argument(help="scoring | policy | notification")],
    port: Annotated[int | None, typer.Option(help="HTTP port for /health and /metrics (0: a free port).")] = None,
) -> None:
    """Run one service in this process (its own consumer group; start more for replicas)."""
    if service not in SERVICES:
        fail(f"unknown service {service!r}: choose one of {', '.join(SERVICES)}")
    service_settings()  # CW_ENVIRONMENT named, the settings safe for it
    # Only the chosen service is imported: a scoring process does not load the policy's code.
    module = importlib.import_module(f"services.{service}.app")
    try:
        module.main(port=port)
    except UnsafeEnvironment as exc:
        fail(str(exc))
