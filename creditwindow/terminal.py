"""What every operator command shares: the consoles, `--json`, clear errors, and reaching Kafka and Redis.

A command that cannot reach the broker or Redis says which address it tried and how to start the
local platform, instead of printing a traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, NoReturn, TypeVar

import typer
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from pydantic import ValidationError
from pydantic_settings import SettingsError
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rich.console import Console

from shared.contracts import Topics
from shared.contracts.topics import CATALOGUE, TopicEntry
from shared.environments import UnsafeEnvironment, check_environment, check_named_environment
from shared.masking import mask_secrets
from shared.redis_connection import make_redis
from shared.settings import Settings, UnknownVariables, variable_of

__all__ = [
    "JsonOption",
    "YesOption",
    "checked_settings",
    "console",
    "err",
    "fail",
    "reach",
    "resolve_topic",
    "service_settings",
    "topic_names",
    "unreachable_message",
    "with_redis",
]

T = TypeVar("T")

console = Console()
err = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print data as JSON.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Publish without asking.")]

_HOW_TO_START = "Start the local platform with `creditwindow dev up` (or set KAFKA_BOOTSTRAP_SERVERS / REDIS_URL)."


def fail(message: str, code: int = 1) -> NoReturn:
    """Print an error on stderr and leave with `code`."""
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def publishing_needs_yes(as_json: bool, yes: bool) -> None:
    """A command that publishes asks first; with --json it cannot ask, so it needs --yes."""
    if as_json and not yes:
        fail("--json does not ask before publishing: add --yes")


def checked_settings() -> Settings:
    """The settings of this process, readable and safe for its environment; else the command ends,
    naming the variables (and never their values: a setting may hold a secret)."""
    try:
        settings = Settings()
    except UnknownVariables as exc:
        fail(f"the settings are invalid: {exc}")
    except ValidationError as exc:
        problems = "; ".join(
            " ".join([variable_of(str(error["loc"][0])) if error["loc"] else "settings", *map(str, error["loc"][1:])])
            + f": {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False, include_context=False)
        )
        fail(f"the settings are invalid: {problems}")
    except SettingsError as exc:  # a variable that is not the JSON it should be
        field = str(exc).split('"')[1] if '"' in str(exc) else "settings"
        fail(f"the settings are invalid: {variable_of(field)} cannot be read ({exc.__cause__.__class__.__name__})")
    try:
        check_environment(settings)
    except UnsafeEnvironment as exc:
        fail(str(exc))
    return settings


def service_settings() -> Settings:
    """`checked_settings` for a process that runs a service: it must also say where it runs
    (CW_ENVIRONMENT set), so a deployment that forgot it does not start as `local`."""
    settings = checked_settings()
    try:
        check_named_environment(settings)
    except UnsafeEnvironment as exc:
        fail(str(exc))
    return settings


def unreachable_message(exc: BaseException, settings: Settings) -> str | None:
    """The operator's message for a connection failure, or None when `exc` is something else.

    The address is shown without its password, and no secret of the settings survives in the text.
    """
    if isinstance(exc, (KafkaConnectionError, KafkaTimeoutError)):
        message = f"Kafka at {settings.kafka_servers} does not answer ({str(exc)[:200]}). {_HOW_TO_START}"
    elif isinstance(exc, (RedisConnectionError, RedisTimeoutError, ConnectionRefusedError)):
        message = f"Redis at {settings.redis_where} does not answer ({str(exc)[:200]}). {_HOW_TO_START}"
    else:
        return None
    return mask_secrets(message, settings.secret_values())


def reach(operation: Callable[[], Awaitable[T]], settings: Settings) -> T:
    """Run an async operation against Kafka and/or Redis; a connection failure ends the command clearly."""
    try:
        return asyncio.run(operation())  # type: ignore[arg-type]
    except Exception as exc:
        message = unreachable_message(exc, settings)
        if message is None:
            raise
        fail(message)


def with_redis(operation: Callable[[Redis], Awaitable[T]], settings: Settings) -> T:
    """Run an async operation on a Redis client made for this command; an unreachable Redis ends it clearly."""

    async def run() -> T:
        redis = make_redis(settings, socket_timeout=None, connect_timeout=3.0)
        try:
            return await operation(redis)
        finally:
            await redis.aclose()

    return reach(run, settings)


def topic_names() -> dict[str, TopicEntry]:
    """Every name an operator may give a topic, from the one list (shared/contracts/topics.py): its
    name without `credit.` (`lending-requests`) and its aliases (`dlq`)."""
    return {name: entry for entry in CATALOGUE for name in (entry.short, *entry.aliases)}


def resolve_topic(name: str, topics: Topics) -> str:
    """A topic by short name (`windows`), base name (`credit.windows`) or full name, in the namespace."""
    base = name.removeprefix(f"{topics.namespace}.") if topics.namespace else name
    base = base.removeprefix("credit.")
    entry = topic_names().get(base)
    if entry is None:
        known = ", ".join(e.short for e in CATALOGUE)
        raise ValueError(f"unknown topic {name!r}: use one of {known} (with or without the `credit.` prefix)")
    return str(getattr(topics, entry.attribute))
