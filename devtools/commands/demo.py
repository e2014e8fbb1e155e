"""`creditwindow demo`: the whole fleet end to end on the local platform with the German Credit applications."""

from __future__ import annotations

from typing import Annotated

import typer

from creditwindow.terminal import console, fail

__all__ = ["demo"]


def demo(count: Annotated[int | None, typer.Option(help="Applications to publish (default: all 1,000 rows).")] = None) -> None:
    """Run the whole fleet end to end on the local platform with the German Credit applications."""
    from devtools.demo import run_demo
    from devtools.platform import PlatformError

    try:
        result = run_demo(count=count, console=console)
    except PlatformError as exc:
        fail(str(exc))
    if not result.complete:
        fail(
            f"only {len(result.decisions)} decisions and {len(result.notifications)} notifications "
            f"for {result.published} applications"
        )
