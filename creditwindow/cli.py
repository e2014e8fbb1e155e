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
limits = typer.Typer(help="Customers' current windows as cached in Redis.", no_args_is_help=True)
cache = typer.Typer(help="The Redis cache: derived state, rebuilt from credit.windows.", no_args_is_help=True)
budget = typer.Typer(help="Portfolio budgets per segment.", no_args_is_help=True)
app.add_typer(dev, name="dev")
app.add_typer(schema, name="schema")
app.add_typer(limits, name="limits")
app.add_typer(cache, name="cache")
app.add_typer(budget, name="budget")

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


def _redis_call(coro_factory):  # type: ignore[no-untyped-def]
    """Run an async Redis operation with a clear error when Redis does not answer."""
    import asyncio

    from redis.asyncio import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    settings = Settings()

    async def run():  # type: ignore[no-untyped-def]
        redis = Redis.from_url(settings.redis_dsn, socket_connect_timeout=3)
        try:
            return await coro_factory(redis, settings)
        finally:
            await redis.aclose()

    try:
        return asyncio.run(run())
    except (RedisConnectionError, OSError) as exc:
        fail(f"Redis at {settings.redis_dsn} does not answer ({exc}). Start the local platform with `creditwindow dev up`.")


@limits.command("get")
def limits_get(customer: Annotated[str, typer.Argument(help="Pseudonymous customer id.")], as_json: JsonOption = False) -> None:
    """A customer's current window: status, limit, APR, valid until, decision, sequence, policy."""
    from services.policy.redis_limits import RedisLimits

    window = _redis_call(lambda redis, settings: RedisLimits(redis, settings.redis_prefix).current(customer))
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


@budget.command("show")
def budget_show(as_json: JsonOption = False) -> None:
    """Per segment: exposure and expected loss reserved, the policy's budget, utilisation."""
    from creditwindow.policy_ops import active_policy
    from creditwindow.terminal import reach
    from services.policy.redis_limits import RedisLimits

    policy, source = reach(lambda: active_policy(Settings()), Settings())
    reserved = _redis_call(lambda redis, settings: RedisLimits(redis, settings.redis_prefix).budgets())
    names = [p.name for p in policy.programmes]
    programmes = _redis_call(lambda redis, settings: RedisLimits(redis, settings.redis_prefix).programmes(names))
    rows = []
    for segment, limit in policy.budgets.items():
        used = reserved.get(segment, {"exposure": 0.0, "expected_loss": 0.0})
        rows.append(
            {
                "segment": segment,
                "reserved": int(used["exposure"]),
                "limit": limit.exposure,
                "utilisation": used["exposure"] / limit.exposure if limit.exposure else 1.0,
                "expected_loss_reserved": used["expected_loss"],
                "expected_loss_limit": limit.expected_loss,
            }
        )
    for programme in policy.programmes:
        rows.append(
            {
                "segment": f"{programme.segment} ({programme.name})",
                "reserved": programmes.get(programme.name, 0),
                "limit": programme.budget,
                "utilisation": programmes.get(programme.name, 0) / programme.budget if programme.budget else 1.0,
                "expected_loss_reserved": None,
                "expected_loss_limit": None,
            }
        )
    if as_json:
        print(json.dumps({"policy": policy.label, "source": source, "budgets": rows}))
        return
    table = Table("segment", "reserved", "limit", "utilisation", "EL reserved", "EL limit", title=f"budgets under {policy.label}")
    for row in rows:
        table.add_row(
            row["segment"], f"{row['reserved']:,}", f"{row['limit']:,}", f"{row['utilisation']:.1%}",
            "" if row["expected_loss_reserved"] is None else f"{row['expected_loss_reserved']:,.2f}",
            "" if row["expected_loss_limit"] is None else f"{row['expected_loss_limit']:,}",
        )  # fmt: skip
    console.print(table)


@cache.command("rebuild")
def cache_rebuild(
    check: Annotated[bool, typer.Option("--check", help="Rebuild beside the live cache and compare; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Replace the live cache (stop the policy service first).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Rebuild current windows, budgets and decision records from credit.windows."""

    from creditwindow.topics_io import TopicReader
    from services.policy.rebuild import derive, snapshot, write
    from shared.contracts import Decision

    settings = Settings()

    async def read() -> list[Decision]:
        async with TopicReader(settings, [settings.topics.windows]) as reader:
            return [r.event for r in await reader.drain(idle_s=1.0, timeout_s=600) if isinstance(r.event, Decision)]

    from creditwindow.terminal import reach

    decisions = reach(read, settings)
    derived = derive(decisions)
    if check:
        live = _redis_call(lambda redis, s: snapshot(redis, s.redis_prefix))
        ours, theirs = derived.comparable(), live.comparable()
        differences = {k: {"rebuilt": ours[k], "live": theirs[k]} for k in ours if ours[k] != theirs[k]}
        summary = {"decisions": len(decisions), "customers": len(derived.windows), "identical": not differences}
        if as_json:
            print(json.dumps({**summary, "differences": sorted(differences)}))
        else:
            console.print(f"{len(decisions)} decisions, {len(derived.windows)} customers: " + ("[green]identical[/]" if not differences else f"[red]differs in {sorted(differences)}[/]"))
        raise typer.Exit(0 if not differences else 1)
    if not yes:
        fail("this replaces the live cache: stop the policy service, then run with --yes (or use --check)")
    _redis_call(lambda redis, s: write(redis, s.redis_prefix, derived))
    console.print(f"rebuilt {len(derived.windows)} customers' windows from {len(decisions)} decisions")


@app.command("bench")
def bench(
    applications: Annotated[int, typer.Option(help="Applications in the as-fast-as-it-can phase.")] = 20_000,
    rates: Annotated[str, typer.Option(help="Fixed rates per second, comma separated.")] = "100,200,500",
    rate_seconds: Annotated[float, typer.Option(help="How long each fixed-rate phase lasts.")] = 20.0,
    scaling: Annotated[bool, typer.Option(help="Also run two replicas of each service.")] = True,
    report: Annotated[Path, typer.Option(help="Where to write the markdown report.")] = Path("docs/benchmarks.md"),
    as_json: JsonOption = False,
) -> None:
    """Decisions/s and latency of the fleet against a bare aiokafka relay, in the same run."""
    from creditwindow.bench import BenchPlan, print_report, run_bench

    plan = BenchPlan(
        applications=applications,
        rates=tuple(int(r) for r in rates.split(",") if r.strip()),
        rate_seconds=rate_seconds,
        scaling=scaling,
    )
    result = run_bench(plan, console=err if as_json else console, report_path=report)
    if not as_json:
        print_report(result, console)
        console.print(f"report written to {report}")
    print(json.dumps(result.summary()))


@app.command("faults")
def faults(
    applications: Annotated[int, typer.Option(help="Applications to publish.")] = 20_000,
    seconds: Annotated[float, typer.Option(help="How long publishing (and the faults) last.")] = 240.0,
    seed: Annotated[int, typer.Option(help="Seed of the input and of the fault moments.")] = 20261128,
    report: Annotated[Path, typer.Option(help="Where to write the markdown report.")] = Path("docs/reliability.md"),
    as_json: JsonOption = False,
) -> None:
    """Publish applications while killing services, the broker and Redis; then check the books."""
    from creditwindow.faults import FaultPlan, run_faults

    result = run_faults(FaultPlan(applications=applications, publish_seconds=seconds, seed=seed), console=console, report_path=report)
    if not as_json:
        table = Table("check", "result", title=f"fault suite: {applications:,} applications, {len(result.faults)} faults")
        for name, check in result.checks.items():
            table.add_row(name, "[green]pass[/]" if check["ok"] else f"[red]FAIL[/] {check}")
        console.print(table)
        console.print(f"report written to {report}")
    print(json.dumps(result.summary()))
    if not result.passed:
        raise typer.Exit(1)



# Operators' commands, each in its own module.
from creditwindow import asyncapi_docs, dlq, experiment_cli, model_cli, policy_cli, shadow, simulate, tail  # noqa: E402

app.command("tail")(tail.tail)
app.command("simulate")(simulate.simulate)
app.add_typer(model_cli.app, name="model", help="Train, evaluate and watch the scorecard.")
app.add_typer(experiment_cli.app, name="experiment", help="Offline experiments (budget pacing).")
app.add_typer(policy_cli.app, name="policy")
app.add_typer(dlq.app, name="dlq")
app.add_typer(shadow.app, name="shadow")
app.add_typer(asyncapi_docs.app, name="asyncapi")


def main() -> None:
    try:
        app()
    except PlatformError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(1)
