"""`creditwindow limits get CUSTOMER`: a customer's current window, as the book holds it in Redis."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from creditwindow.terminal import JsonOption, console, with_redis
from services.policy.windows.adapters.redis_book import RedisBook
from shared.settings import Settings

__all__ = ["app"]

app = typer.Typer(help="Customers' current windows as cached in Redis.", no_args_is_help=True)


@app.command("get")
def get(customer: Annotated[str, typer.Argument(help="Pseudonymous customer id.")], as_json: JsonOption = False) -> None:
    """A customer's current window: status, limit, balance drawn, available, APR, valid until, decision, sequence, policy."""
    settings = Settings()
    window = with_redis(lambda redis: RedisBook(redis, settings.redis_prefix).current(customer), settings)
    if window is None:
        if as_json:
            print(json.dumps({"customer_id": customer, "status": "none"}))
        else:
            console.print(f"no window recorded for {customer}")
        raise typer.Exit(1)
    if as_json:
        print(json.dumps(window.as_dict()))
        return
    table = Table(show_header=False)
    for key, value in window.as_dict().items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)
