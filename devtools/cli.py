"""The development commands, added to the operators' CLI through the `creditwindow.commands` entry point.

The runtime never imports this package: `creditwindow.cli` finds `register` by its entry point.
"""

from __future__ import annotations

from collections.abc import Mapping

import typer

from creditwindow.sources import register_source
from devtools.commands import bench, demo, dev, experiment, faults, profile
from devtools.scored_period import german_credit_scores

__all__ = ["register"]


def register(root: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add `dev`, `demo`, `bench`, `profile`, `faults` and `experiment` to the operators' app, and the German
    Credit rows as a source of scores for `policy optimise --source germancredit`."""
    root.add_typer(dev.app, name="dev")
    root.add_typer(experiment.app, name="experiment", help="Offline experiments (budget pacing).")
    root.command("demo")(demo.demo)
    root.command("bench")(bench.bench)
    root.command("profile")(profile.profile)
    root.command("faults")(faults.faults)
    register_source("germancredit", german_credit_scores)
