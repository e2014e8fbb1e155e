"""`creditwindow profile`: each service's CPU under the benchmark's load, sampled with py-spy, into docs/profile.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from creditwindow.terminal import console

__all__ = ["profile"]


def profile(
    label: Annotated[str, typer.Option(help="Name of this run (before, after, ...): docs/profile/<service>-<label>.svg.")] = "now",
    applications: Annotated[int, typer.Option(help="Applications published at once while the services are sampled.")] = 60_000,
    seconds: Annotated[float, typer.Option(help="How long each service is sampled.")] = 15.0,
    rate: Annotated[int, typer.Option(help="Samples per second per process.")] = 100,
    keep_stacks: Annotated[bool, typer.Option(help="Keep py-spy's collapsed stacks beside the graphs.")] = False,
    report: Annotated[Path, typer.Option(help="The page that gets the tables (its prose is kept).")] = Path("docs/profile.md"),
) -> None:
    """Sample each service with py-spy while applications arrive as fast as the fleet takes them."""
    from devtools.profile import ProfilePlan, run_profile, write_profile_doc

    out = report.parent / "profile"
    profiles = run_profile(ProfilePlan(applications=applications, seconds=seconds, rate=rate, out=out.resolve(), label=label, keep_stacks=keep_stacks), console=console)
    for p in profiles:
        parts = ", ".join(f"{name} {100 * share:.0f}%" for name, share in p.parts.items())
        console.print(f"[bold]{p.service}[/] ({p.samples} samples, {p.cpu_s} CPU s): {parts}")
    write_profile_doc(out, report)
    console.print(f"tables written to {report}, graphs to {out}")
