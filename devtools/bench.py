"""`creditwindow bench` / `make bench`: end-to-end decisions per second and latency, against a bare
aiokafka relay chain measured in the same run on the same broker.

Fleet: the three services as separate processes. Baseline: three relay processes
(`devtools.relay`) doing the same hops with no logic: the same batch sizes and commit
semantics, the same keys, and payloads of the sizes the fleet writes on each hop. Phases:

1. as fast as it can: N applications (German Credit rows, fresh ids) published at once;
   decisions/s reaching `credit.windows`, notifications/s reaching `credit.notifications`;
2. fixed rates (100, 200, 500/s by default): latency percentiles from the application's
   `occurred_at` to the decision record and to the notification record (broker timestamps);
3. drawdowns, as fast as they come: one drawdown request for each of N customers whose window
   opened in phase 1; outcomes/s reaching `credit.lending-results` and latency from the request to its
   outcome and to the customer's notice;
4. the same "as fast as it can" phase with two replicas of each service: the scaling ratio.

CPU seconds and peak RSS per process come from psutil and /proc; the CPU of the benchmark's own
process (the load generator and the latency consumer) is measured around each phase the same way and
reported beside them, since it shares the machine. From the "as fast as it can" phase, each
service's CPU microseconds per decision (`cpu_us_per_decision`) and the relay's per record.
Only 127.0.0.1; bounded.

`--cluster` runs on the local cluster (devtools/cluster.py) instead, to measure what durability
costs: the fleet with `WAIT` for the Redis replica before publishing (`CW_REDIS_MIN_REPLICAS=1`, as
the cluster runs it) and without (0), then the relay, all on the same replicated topics in one run.
Its report is a section of the page of its own (the single-node run keeps it).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from aiokafka import AIOKafkaProducer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from devtools.cluster import LocalCluster
from devtools.fleet import Fleet
from devtools.germancredit import load_rows
from devtools.namespaces import delete_namespace
from devtools.platform import LocalPlatform
from devtools.redis_memory import kept_section, replace_section
from shared.contracts import ApplicationReceived, DrawdownRequested, WindowOpened
from shared.messaging import aiokafka_kwargs, ensure_topics
from shared.messaging.stages import STAGES
from shared.messaging.topic_io import TopicReader, end_offsets
from shared.settings import REPO_ROOT, Settings
from shared.wire import encode

__all__ = ["BenchPlan", "run_bench"]

SENT_HEADER = "bench_sent_ms"


@dataclass(frozen=True, slots=True)
class BenchPlan:
    applications: int = 20_000
    rates: tuple[int, ...] = (100, 200, 500)
    rate_seconds: float = 20.0
    warmup: int = 1_000
    drawdowns: int = 5_000
    scaling: bool = True
    cluster: bool = False  # on the local cluster: the fleet with and without WAIT, then the relay


@dataclass(slots=True)
class Latency:
    n: int = 0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    max: float = 0.0

    @classmethod
    def of(cls, values_ms: list[float]) -> Latency:
        if not values_ms:
            return cls()
        ordered = sorted(values_ms)

        def pct(p: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

        return cls(len(ordered), pct(0.50), pct(0.95), pct(0.99), round(ordered[-1], 2))


@dataclass(slots=True)
class Phase:
    system: str  # fleet | relay; on the cluster: fleet+wait | fleet-nowait | relay
    replicas: int
    rate: int | None  # None: as fast as it can
    sent: int = 0
    decided: int = 0
    notified: int = 0
    seconds: float = 0.0
    decisions_per_s: float = 0.0
    notifications_per_s: float = 0.0
    to_decision: Latency = field(default_factory=Latency)
    to_notification: Latency = field(default_factory=Latency)
    cpu_s: dict[str, float] = field(default_factory=dict)
    load_cpu_s: float = 0.0  # the benchmark process itself: load generator and latency consumer
    hops: dict[str, Latency] = field(default_factory=dict)  # applied -> scored -> decided -> notified
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)  # per consumer: batches and stages (the services' metrics)
    loop_lag: dict[str, dict[str, float]] = field(default_factory=dict)  # per process: the event loop's lag

    def cpu_us_per_decision(self) -> dict[str, float]:
        """Each process's CPU microseconds per decision (per record for the relay) in this phase."""
        if not self.decided:
            return {}
        return {name: round(seconds * 1e6 / self.decided, 1) for name, seconds in sorted(self.cpu_s.items())}


@dataclass(slots=True)
class BenchReport:
    plan: BenchPlan
    phases: list[Phase] = field(default_factory=list)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)
    hop_bytes: dict[str, int] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)

    def phase(self, system: str, rate: int | None, replicas: int = 1) -> Phase | None:
        return next((p for p in self.phases if (p.system, p.rate, p.replicas) == (system, rate, replicas)), None)

    def summary(self) -> dict[str, Any]:
        if self.plan.cluster:
            return self._cluster_summary()
        fleet, relay = self.phase("fleet", None), self.phase("relay", None)
        scaled = self.phase("fleet", None, replicas=2)
        out: dict[str, Any] = {
            "fleet_per_s": round(fleet.decisions_per_s, 1) if fleet else None,
            "fleet_notifications_per_s": round(fleet.notifications_per_s, 1) if fleet else None,
            "relay_per_s": round(relay.decisions_per_s, 1) if relay else None,
            "ratio": round(fleet.decisions_per_s / relay.decisions_per_s, 3) if fleet and relay and relay.decisions_per_s else None,
            "p99_ms": {},
            "p99_notification_ms": {},
            "relay_p99_ms": {},
            "peak_rss_mib": self.peak_rss_mib,
        }
        # CPU per decision, from the "as fast as it can" phase: each fleet service (by its name
        # without the replica), their sum, and the relay's per record for comparison.
        if fleet is not None:
            per = {name.rsplit("-", 1)[0]: us for name, us in fleet.cpu_us_per_decision().items()}
            out["cpu_us_per_decision"] = {**per, "fleet": round(sum(per.values()), 1)}
        if relay is not None:
            per = relay.cpu_us_per_decision()
            out["relay_cpu_us_per_record"] = {**per, "relay": round(sum(per.values()), 1)}
        # The benchmark's own CPU (load generator and latency consumer), on the same machine.
        out["load_generator_cpu_s"] = {_label(p): round(p.load_cpu_s, 2) for p in self.phases}
        if fleet is not None and fleet.sent:
            out["load_generator_cpu_us_per_application"] = round(fleet.load_cpu_s * 1e6 / fleet.sent, 1)
        for rate in self.plan.rates:
            f, r = self.phase("fleet", rate), self.phase("relay", rate)
            out["p99_ms"][str(rate)] = f.to_decision.p99 if f else None
            out["p99_notification_ms"][str(rate)] = f.to_notification.p99 if f else None
            out["relay_p99_ms"][str(rate)] = r.to_decision.p99 if r else None
        out.update(self._where_the_time_goes())
        drawn = self.phase("drawdowns", None)
        if drawn is not None:
            out["drawdowns_per_s"] = round(drawn.decisions_per_s, 1)
            out["drawdown_p50_ms"] = drawn.to_decision.p50
            out["drawdown_p99_ms"] = drawn.to_decision.p99
            out["drawdown_notice_p99_ms"] = drawn.to_notification.p99
            out["drawdowns_answered"] = drawn.decided
        if scaled and fleet and fleet.decisions_per_s:
            out["replicas_2_per_s"] = round(scaled.decisions_per_s, 1)
            out["scaling_ratio"] = round(scaled.decisions_per_s / fleet.decisions_per_s, 3)
        return out

    def _where_the_time_goes(self) -> dict[str, Any]:
        """Medians per rate, each hop's p50/p99, the consumers' stages and loop lag, and the latency targets."""
        out: dict[str, Any] = {"p50_ms": {}, "relay_p50_ms": {}, "p50_notification_ms": {}, "hops_ms": {}, "stages": {}, "loop_lag_ms": {}}
        for rate in (None, *self.plan.rates):
            key = "max" if rate is None else str(rate)
            f, r = self.phase("fleet", rate), self.phase("relay", rate)
            if rate is not None:
                out["p50_ms"][key] = f.to_decision.p50 if f else None
                out["p50_notification_ms"][key] = f.to_notification.p50 if f else None
                out["relay_p50_ms"][key] = r.to_decision.p50 if r else None
                out["hops_ms"][key] = {
                    system: {hop: [latency.p50, latency.p99] for hop, latency in phase.hops.items()}
                    for system, phase in (("fleet", f), ("relay", r)) if phase is not None
                }  # fmt: skip
            if f is not None:
                out["stages"][key] = f.stages
                out["loop_lag_ms"][key] = f.loop_lag
        low, high = (min(self.plan.rates), max(self.plan.rates)) if self.plan.rates else (None, None)
        f_low, f_high, r_high = self.phase("fleet", low), self.phase("fleet", high), self.phase("relay", high)
        if f_low and f_high and r_high and f_low.to_decision.p50 and r_high.to_decision.p99:
            out["latency_targets"] = {
                f"fleet_p50_{high}_over_p50_{low}": round(f_high.to_decision.p50 / f_low.to_decision.p50, 2),
                f"fleet_p99_{high}_over_relay_p99_{high}": round(f_high.to_decision.p99 / r_high.to_decision.p99, 2),
            }
        return out

    def _cluster_summary(self) -> dict[str, Any]:
        waited, plain, relay = self.phase(WAITED, None), self.phase(UNWAITED, None), self.phase("relay", None)
        out: dict[str, Any] = {
            "cluster": True,
            "wait_per_s": round(waited.decisions_per_s, 1) if waited else None,
            "no_wait_per_s": round(plain.decisions_per_s, 1) if plain else None,
            "relay_per_s": round(relay.decisions_per_s, 1) if relay else None,
            "throughput_cost_pct": None,
            "p50_ms": {},
            "p99_ms": {},
            "p99_notification_ms": {},
        }
        if waited and plain and plain.decisions_per_s:
            out["throughput_cost_pct"] = round(100 * (1 - waited.decisions_per_s / plain.decisions_per_s), 1)
        for rate in self.plan.rates:
            w, n, r = self.phase(WAITED, rate), self.phase(UNWAITED, rate), self.phase("relay", rate)
            out["p50_ms"][str(rate)] = {"wait": w.to_decision.p50 if w else None, "no_wait": n.to_decision.p50 if n else None}
            out["p99_ms"][str(rate)] = {
                "wait": w.to_decision.p99 if w else None, "no_wait": n.to_decision.p99 if n else None, "relay": r.to_decision.p99 if r else None,
            }  # fmt: skip
            out["p99_notification_ms"][str(rate)] = {"wait": w.to_notification.p99 if w else None, "no_wait": n.to_notification.p99 if n else None}
        return out


def _label(phase: Phase) -> str:
    rate = "max" if phase.rate is None else f"{phase.rate}/s"
    return f"{phase.system} x{phase.replicas} {rate}"


def _own_cpu() -> float:
    """CPU seconds of this process (the load generator and the latency consumer run in it)."""
    times = psutil.Process().cpu_times()
    return times.user + times.system


WAITED, UNWAITED = "fleet+wait", "fleet-nowait"


# --- load --------------------------------------------------------------------------------------------


def _application(n: int, run: str) -> ApplicationReceived:
    rows = load_rows()
    row = rows[n % len(rows)]
    application_id = f"app_b{run}_{n:07d}"
    return ApplicationReceived(
        correlation_id=application_id,
        producer="bench",
        application_id=application_id,
        customer_id=f"cus_b{run}_{n:07d}",
        facts=row.facts,
        applicant=row.applicant,
    )


async def _publish(
    settings: Settings, topic: str, count: int, rate: int | None, run: str, sent_at: dict[bytes, float], on_sent: Callable[[], None]
) -> float:
    """Publish `count` applications, at `rate` per second or as fast as possible; returns the first send time.

    `sent_at` gets each key's start time (the application's occurred_at), in seconds.
    """
    producer = AIOKafkaProducer(**aiokafka_kwargs(settings), acks="all", linger_ms=0 if rate else 5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        prepared = [] if rate else [_application(n, run) for n in range(count)]
        encoded = [encode(a) for a in prepared]
        first = time.time()
        began = time.monotonic()
        futures = []
        for n in range(count):
            if rate:
                delay = began + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                application = _application(n, run)  # occurred_at is now: latency starts here
                message = encode(application)
            else:
                application, message = prepared[n], encoded[n]
            sent_at[message.key] = application.occurred_at.timestamp()
            headers = [(k, v.encode()) for k, v in message.headers.items()]
            futures.append(await producer.send(topic, message.value, key=message.key, headers=headers))
            on_sent()
        await asyncio.gather(*futures)
        return first
    finally:
        await producer.stop()


# --- measuring ---------------------------------------------------------------------------------------


Publish = Callable[[dict[bytes, float], Callable[[], None]], Any]


async def _measure(
    settings: Settings,
    source_topic: str,
    decision_topic: str,
    notification_topic: str,
    phase: Phase,
    progress: Progress,
    publish: Publish | None = None,
    scored_topic: str | None = None,
) -> None:
    """Publish while reading this run's decisions and notifications (by key); fill in the phase.

    `publish` (sent_at, on_sent) replaces the applications (the drawdown phase: its "decisions" are
    the lending results). `scored_topic`: the middle hop's topic, read too, for the latency of each
    hop (`Phase.hops`)."""
    run = uuid.uuid4().hex[:6]
    topics = [decision_topic, notification_topic] + ([scored_topic] if scored_topic else [])
    start = await end_offsets(settings, topics)
    sent_at: dict[bytes, float] = {}
    scored: dict[bytes, float] = {}
    decided: dict[bytes, float] = {}
    notified: dict[bytes, float] = {}
    label = f"{phase.system} x{phase.replicas} " + (f"{phase.rate}/s" if phase.rate else "max")
    sending = progress.add_task(f"{label}: sent", total=phase.sent)
    deciding = progress.add_task(f"{label}: decided", total=phase.sent)
    publishing_done = asyncio.Event()

    async def read() -> None:
        async with TopicReader(settings, topics, start=start, decode=False) as reader:
            quiet_deadline = None
            while len(decided) < phase.sent or len(notified) < phase.sent:
                batch = await reader.poll(timeout_ms=100)
                for item in batch:
                    key = item.record.key
                    if key not in sent_at:
                        continue
                    arrived = item.timestamp_ms / 1000  # the broker's timestamp: when the hop wrote it
                    if item.record.topic == decision_topic:
                        if key not in decided:
                            decided[key] = arrived
                            progress.advance(deciding)
                    elif item.record.topic == scored_topic:
                        scored.setdefault(key, arrived)
                    elif key not in notified:
                        notified[key] = arrived
                if publishing_done.is_set():
                    quiet_deadline = quiet_deadline or time.monotonic() + 120
                    if time.monotonic() > quiet_deadline:
                        break  # report what arrived; the counts show anything missing

    reading = asyncio.create_task(read())
    if publish is not None:
        first = await publish(sent_at, lambda: progress.advance(sending))
    else:
        first = await _publish(settings, source_topic, phase.sent, phase.rate, run, sent_at, lambda: progress.advance(sending))
    publishing_done.set()
    await reading
    phase.decided, phase.notified = len(decided), len(notified)
    if decided:
        phase.seconds = max(decided.values()) - first
        phase.decisions_per_s = len(decided) / max(phase.seconds, 1e-9)
    if notified:
        phase.notifications_per_s = len(notified) / max(max(notified.values()) - first, 1e-9)
    phase.to_decision = Latency.of([(t - sent_at[k]) * 1000 for k, t in decided.items()])
    phase.to_notification = Latency.of([(t - sent_at[k]) * 1000 for k, t in notified.items()])
    if scored:
        # Each hop from the record timestamps (each writer's time of the record, before its produce request).
        phase.hops = {
            "applied_to_scored": Latency.of([(t - sent_at[k]) * 1000 for k, t in scored.items()]),
            "scored_to_decided": Latency.of([(decided[k] - t) * 1000 for k, t in scored.items() if k in decided]),
            "decided_to_notified": Latency.of([(notified[k] - t) * 1000 for k, t in decided.items() if k in notified]),
        }


async def _opened_customers(settings: Settings, wanted: int) -> list[tuple[str, int]]:
    """Customers whose window opened in this run (and its limit), in the order decided."""
    async with TopicReader(settings, [settings.topics.windows]) as reader:
        seen = await reader.drain(idle_s=0.5, timeout_s=120)
    opened = {r.event.customer_id: r.event.limit for r in seen if isinstance(r.event, WindowOpened)}
    return list(opened.items())[:wanted]


def _drawdown_publisher(settings: Settings, customers: list[tuple[str, int]]) -> Publish:
    """One drawdown request per customer, as fast as the producer takes them (half of each limit,
    so nearly all are approved: the book's full path)."""

    async def publish(sent_at: dict[bytes, float], on_sent: Callable[[], None]) -> float:
        run = uuid.uuid4().hex[:6]
        requests = [
            DrawdownRequested(correlation_id=f"dd_b{run}_{n:06d}", drawdown_id=f"dd_b{run}_{n:06d}", customer_id=customer, amount=max(100, limit // 2), producer="bench")
            for n, (customer, limit) in enumerate(customers)
        ]  # fmt: skip
        producer = AIOKafkaProducer(**aiokafka_kwargs(settings), acks="all", linger_ms=5, max_batch_size=256 * 1024)
        await producer.start()
        try:
            first = time.time()
            futures = []
            for request in requests:
                message = encode(request)
                sent_at[message.key] = request.occurred_at.timestamp()
                headers = [(k, v.encode()) for k, v in message.headers.items()]
                futures.append(await producer.send(settings.topics.lending_requests, message.value, key=message.key, headers=headers))
                on_sent()
            await asyncio.gather(*futures)
            return first
        finally:
            await producer.stop()

    return publish


async def _drawdown_phase(settings: Settings, plan: BenchPlan, pids: Callable[[], dict[str, int]], report: BenchReport, progress: Progress) -> None:
    customers = await _opened_customers(settings, plan.drawdowns)
    if not customers:
        return
    phase = Phase(system="drawdowns", replicas=1, rate=None, sent=len(customers))
    before, own = _cpu(pids()), _own_cpu()
    topics = settings.topics
    await _measure(settings, topics.lending_requests, topics.lending_results, topics.notifications, phase, progress, publish=_drawdown_publisher(settings, customers))
    after = _cpu(pids())
    phase.load_cpu_s = _own_cpu() - own
    phase.cpu_s = {k: round(after[k] - before.get(k, 0.0), 2) for k in after}
    report.phases.append(phase)


# --- processes ---------------------------------------------------------------------------------------


def _peak_rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Relay:
    """Three relay processes: applications -> scores -> windows -> notifications, no logic."""

    def __init__(self, settings: Settings, sizes: dict[str, int], log_dir: Path, env: dict[str, str] | None = None) -> None:
        topics = settings.topics
        self.env = env or {}
        self.hops = [
            ("relay-scoring", topics.applications, topics.scores, sizes["scores"]),
            ("relay-policy", topics.scores, topics.windows, sizes["windows"]),
            ("relay-notification", topics.windows, topics.notifications, sizes["notifications"]),
        ]
        self.settings = settings
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "CW_TOPIC_NAMESPACE": self.settings.topic_namespace}
        for name, source, sink, size in self.hops:
            with (self.log_dir / f"{name}.log").open("ab") as log:
                self.processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "devtools.relay", "--source", source, "--sink", sink,
                     "--group", f"{self.settings.topic_namespace}.{name}", "--size", str(size)],
                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.processes.items() if p.poll() is None}


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    usage = {}
    for name, pid in pids.items():
        try:
            times = psutil.Process(pid).cpu_times()
            usage[name] = times.user + times.system
        except psutil.Error:
            continue
    return usage


def _fleet_pids(fleet: Fleet) -> dict[str, int]:
    return {name: p.process.pid for name, p in fleet.processes.items() if p.alive and p.process is not None}


def _fleet_addresses(fleet: Fleet) -> dict[str, str]:
    """Where each live service process serves /metrics."""
    found = {name: fleet.http_address(name) for name, p in fleet.processes.items() if p.alive}
    return {name: address for name, address in found.items() if address}


async def _phases(
    settings: Settings, system: str, replicas: int, rates: tuple[int | None, ...], count: int, plan: BenchPlan,
    pids: Callable[[], dict[str, int]], report: BenchReport, progress: Progress,
    addresses: Callable[[], dict[str, str]] = dict,
) -> None:  # fmt: skip
    topics = settings.topics
    for rate in rates:
        sent = count if rate is None else int(rate * plan.rate_seconds)
        phase = Phase(system=system, replicas=replicas, rate=rate, sent=sent)
        metrics_before = await _scrape(addresses())
        before, own = _cpu(pids()), _own_cpu()
        await _measure(settings, topics.applications, topics.windows, topics.notifications, phase, progress, scored_topic=topics.scores)
        after = _cpu(pids())
        phase.load_cpu_s = _own_cpu() - own
        phase.cpu_s = {k: round(after[k] - before.get(k, 0.0), 2) for k in after}
        phase.stages, phase.loop_lag = _stage_figures(metrics_before, await _scrape(addresses()), topics.topic_prefix)
        report.phases.append(phase)


# --- where the time goes: the services' own metrics (shared/messaging/stages.py), read around a phase ---

Samples = dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]  # process -> (name, labels) -> value


async def _scrape(addresses: dict[str, str]) -> Samples:
    """Every sample of each process's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: Samples = {}
    async with httpx.AsyncClient(timeout=5.0) as client:
        for name, address in addresses.items():
            try:
                text = (await client.get(f"{address}/metrics")).text
            except httpx.HTTPError:
                continue
            samples[name] = {
                (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }
    return samples


def _bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The upper bound of the histogram bucket holding quantile `q` (cumulative counts, sorted by bound)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    wanted = q * buckets[-1][1]
    return next((bound for bound, count in buckets if count >= wanted), None)


def _stage_figures(before: Samples, after: Samples, prefix: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, float]]]:
    """Per consumer (`<process> <topic>`): batches, records per batch, ms per batch in each stage; per process: loop lag."""
    stages: dict[str, dict[str, Any]] = {}
    lags: dict[str, dict[str, float]] = {}
    for process, now in after.items():
        then = before.get(process, {})

        def delta(key: tuple[str, tuple[tuple[str, str], ...]], now: dict[Any, float] = now, then: dict[Any, float] = then) -> float:
            return now.get(key, 0.0) - then.get(key, 0.0)

        consumers = {dict(labels)["consumer"] for name, labels in now if name == "creditwindow_batch_records_count"}
        for consumer in sorted(consumers):
            labels = (("consumer", consumer),)
            batches = delta(("creditwindow_batch_records_count", labels))
            if batches <= 0:
                continue
            records = delta(("creditwindow_batch_records_sum", labels))
            buckets = sorted(
                (float(dict(lbl)["le"]), delta((name, lbl)))
                for name, lbl in now
                if name == "creditwindow_batch_records_bucket" and dict(lbl)["consumer"] == consumer
            )
            per_batch = {
                stage: round(delta(("creditwindow_batch_stage_seconds_total", (("consumer", consumer), ("stage", stage)))) * 1000 / batches, 3)
                for stage in STAGES
            }
            stages[f"{process} {consumer.removeprefix(prefix)}"] = {
                "batches": int(batches),
                "records_per_batch": round(records / batches, 1),
                "records_per_batch_p50": _bucket_quantile(buckets, 0.5),
                "records_per_batch_p90": _bucket_quantile(buckets, 0.9),
                "ms_per_batch": per_batch,
            }
        count = delta(("creditwindow_event_loop_lag_seconds_count", ()))
        if count > 0:
            buckets = sorted(
                (float(dict(lbl)["le"]), delta((name, lbl))) for name, lbl in now if name == "creditwindow_event_loop_lag_seconds_bucket"
            )
            p99 = _bucket_quantile(buckets, 0.99)
            lags[process] = {
                "mean_ms": round(delta(("creditwindow_event_loop_lag_seconds_sum", ())) * 1000 / count, 2),
                "p99_ms_at_most": round(p99 * 1000, 1) if p99 is not None and p99 != float("inf") else float("inf"),
            }
    return stages, lags


async def _hop_sizes(settings: Settings) -> dict[str, int]:
    """Mean record size the fleet wrote on each hop (for the relay's payloads)."""
    sizes = {}
    for name in ("scores", "windows", "notifications"):
        topic = getattr(settings.topics, name)
        async with TopicReader(settings, [topic]) as reader:
            values = [len(r.record.value or b"") for r in (await reader.drain(idle_s=0.5, timeout_s=60))[:5000]]
        sizes[name] = int(statistics.mean(values)) if values else 1024
    return sizes


async def _run(plan: BenchPlan, console: Console) -> BenchReport:
    home = Settings()
    say = lambda line: console.print(line, highlight=False)  # noqa: E731
    endpoints: dict[str, str] = {}
    if plan.cluster:
        cluster = LocalCluster(home, say=say)
        await asyncio.to_thread(cluster.up)
        base, endpoints = cluster.settings, cluster.layout.env()
    else:
        base = home
        await asyncio.to_thread(LocalPlatform(base, say=say).up)
    report = BenchReport(plan=plan, machine={"cpus": os.cpu_count(), "python": sys.version.split()[0]})
    stamp = time.strftime("%m%d%H%M%S")
    columns = (TextColumn("{task.description:<30}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    runs: list[tuple[str, int]]
    if plan.cluster:
        runs = [(WAITED, 1), (UNWAITED, 1), ("relay", 1)]
    else:
        runs = [("fleet", 1), ("relay", 1)] + ([("fleet", 2)] if plan.scaling else [])
    with Progress(*columns, console=console, transient=False) as progress:
        for system, replicas in runs:
            settings = base.model_copy(update={"topic_namespace": f"bench{stamp}{system.replace('+', '').replace('-', '')}{replicas}"})
            await ensure_topics(settings)
            log_dir = base.home / "logs" / settings.topic_namespace
            fleet = relay = None
            try:
                if system != "relay":
                    env = {**endpoints, "CW_TOPIC_NAMESPACE": settings.topic_namespace}
                    if plan.cluster:
                        env["CW_REDIS_MIN_REPLICAS"] = "1" if system == WAITED else "0"
                    fleet = Fleet(env=env, log_dir=log_dir, replicas=replicas)
                    fleet.start()
                    await asyncio.to_thread(fleet.wait_ready, 90.0)
                    pids: Callable[[], dict[str, int]] = lambda f=fleet: _fleet_pids(f)  # noqa: E731
                    addresses: Callable[[], dict[str, str]] = lambda f=fleet: _fleet_addresses(f)  # noqa: E731
                else:
                    relay = Relay(settings, report.hop_bytes, log_dir, env=endpoints)
                    relay.start()
                    pids, addresses = relay.pids, dict
                    await asyncio.sleep(3.0)  # the relay consumers join their groups
                # warm up (imports, JIT-free Python still has caches to fill), not measured
                await _measure(settings, settings.topics.applications, settings.topics.windows, settings.topics.notifications,
                               Phase(system, replicas, None, sent=plan.warmup), progress)  # fmt: skip
                rates: tuple[int | None, ...] = (None, *plan.rates) if replicas == 1 else (None,)
                await _phases(settings, system, replicas, rates, plan.applications, plan, pids, report, progress, addresses)
                if system != "relay" and replicas == 1 and not report.hop_bytes:
                    report.hop_bytes = await _hop_sizes(settings)
                    if plan.drawdowns and not plan.cluster:
                        await _drawdown_phase(settings, plan, pids, report, progress)
                for name, pid in pids().items():
                    report.peak_rss_mib[f"{name}" + ("" if replicas == 1 else f" (x{replicas})")] = round(_peak_rss_mib(pid), 1)
            finally:
                if fleet is not None:
                    fleet.stop()
                if relay is not None:
                    relay.stop()
                await delete_namespace(settings)
    return report


# --- the report --------------------------------------------------------------------------------------


def _plot(report: BenchReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = list(report.plan.rates)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, (system, title) in zip(axes, (("fleet", "fleet (3 services)"), ("relay", "bare aiokafka relay")), strict=True):
        phases = [report.phase(system, rate) for rate in rates]
        for attr, label, style in (("to_decision", "application -> decision", "-"), ("to_notification", "application -> notification", "--")):
            for pct, marker in (("p50", "o"), ("p95", "s"), ("p99", "^")):
                values = [getattr(getattr(p, attr), pct) if p else float("nan") for p in phases]
                ax.plot(rates, values, style, marker=marker, label=f"{label} {pct}")
        ax.set_title(title)
        ax.set_xlabel("applications per second (fixed rate)")
        ax.set_xticks(rates)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("latency, ms (log scale)")
    axes[0].set_yscale("log")
    axes[1].legend(fontsize=7, loc="upper left")
    fig.suptitle("creditwindow: latency against rate, same broker, same run")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


CLUSTER_BEGIN, CLUSTER_END = "<!-- BEGIN cluster-bench -->", "<!-- END cluster-bench -->"


def write_cluster_section(report: BenchReport, path: Path) -> None:
    """The cluster's run: what WAIT for the replica costs, as a section of the page (the rest is kept)."""
    summary = report.summary()
    lines = [
        "## On the local cluster: what waiting for the Redis replica costs",
        "",
        "Generated by `creditwindow bench --cluster` on the local cluster (three KRaft nodes, topics with replication",
        "factor 3 and `min.insync.replicas` 2, Redis master + replica + three Sentinels), in one run: the fleet with",
        "`WAIT 1` after a batch's Redis writes and before it publishes (`CW_REDIS_MIN_REPLICAS=1`, as the cluster runs",
        "it), the same fleet without (`0`), then the bare relay on the same replicated topics. Same machine as above:",
        f"{report.machine.get('cpus')} CPUs shared by three brokers, two Redis, three Sentinels, the services and the load.",
        "",
        f"- with WAIT: **{summary['wait_per_s']} decisions/s**; without: **{summary['no_wait_per_s']} decisions/s**; "
        f"throughput cost of WAIT: **{summary['throughput_cost_pct']}%**",
        f"- bare relay on the replicated topics: {summary['relay_per_s']} records/s",
        "",
        "| system | rate | sent | decided | decisions/s | to decision p50 / p95 / p99 / max (ms) | to notification p50 / p95 / p99 / max (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    names = {WAITED: "fleet, WAIT for the replica", UNWAITED: "fleet, no WAIT", "relay": "bare relay"}
    for p in report.phases:
        d, n = p.to_decision, p.to_notification
        rate = "max" if p.rate is None else f"{p.rate}/s"
        lines.append(
            f"| {names.get(p.system, p.system)} | {rate} | {p.sent:,} | {p.decided:,} | {p.decisions_per_s:,.0f} | "
            f"{d.p50} / {d.p95} / {d.p99} / {d.max} | {n.p50} / {n.p95} / {n.p99} / {n.max} |"
        )
    lines += [
        "",
        "Each batch with something to publish costs one more round trip to Redis that waits for the replica's",
        "acknowledgement (policy: after `remember`; notification: after the ledger's `remember`, and after the webhook",
        "enqueue when a partner is told), a fraction of a millisecond on one host; a batch amortises it over its records.",
        "",
        "```json",
        json.dumps(summary, indent=2),
        "```",
    ]
    replace_section(path, "\n".join(lines), CLUSTER_BEGIN, CLUSTER_END)


def write_report(report: BenchReport, path: Path) -> None:
    if report.plan.cluster:
        write_cluster_section(report, path)
        return
    summary = report.summary()
    image = path.parent / "img" / "bench-latency.png"
    _plot(report, image)
    lines = [
        "# Benchmarks: decisions per second and latency against a bare Kafka relay",
        "",
        "Generated by `creditwindow bench` (`make bench`) on the local platform; re-run it to refresh this page.",
        f"Machine: {report.machine.get('cpus')} CPUs, Python {report.machine.get('python')}; everything (broker, Redis,",
        "services, relay, load generator) shares those CPUs, so figures are for comparison within one run.",
        "",
        "## Headline",
        "",
        f"- fleet: **{summary['fleet_per_s']} decisions/s** ({summary['fleet_notifications_per_s']} notifications/s)",
        f"- bare aiokafka relay, same hops, same commit semantics: **{summary['relay_per_s']} records/s**",
        f"- ratio fleet / relay: **{summary['ratio']}**",
    ]
    if "drawdowns_per_s" in summary:
        lines.append(
            f"- drawdowns (one per customer whose window opened, all sent at once): **{summary['drawdowns_per_s']} outcomes/s**, "
            f"request to outcome p50 {summary['drawdown_p50_ms']} ms, p99 {summary['drawdown_p99_ms']} ms (queueing included); "
            "the `drawdowns` row below counts outcomes as decided and the customers' notices as notified"
        )
    if "scaling_ratio" in summary:
        lines.append(f"- two replicas of each service: {summary['replicas_2_per_s']} decisions/s, scaling ratio **{summary['scaling_ratio']}**")
    lines += [
        "",
        "## Phases",
        "",
        "| system | replicas | rate | sent | decided | notified | decisions/s | notifications/s | to decision p50 / p95 / p99 / max (ms) | to notification p50 / p95 / p99 / max (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in report.phases:
        d, n = p.to_decision, p.to_notification
        rate = "max" if p.rate is None else f"{p.rate}/s"
        lines.append(
            f"| {p.system} | {p.replicas} | {rate} | {p.sent:,} | {p.decided:,} | {p.notified:,} | {p.decisions_per_s:,.0f} | "
            f"{p.notifications_per_s:,.0f} | {d.p50} / {d.p95} / {d.p99} / {d.max} | {n.p50} / {n.p95} / {n.p99} / {n.max} |"
        )
    lines += [
        "",
        "At the \"max\" rate everything is published at once, so its latencies are queueing time, not service time.",
        "",
        f"![latency against rate]({image.relative_to(path.parent)})",
        "",
        *_time_lines(report, summary),
        "## CPU per decision",
        "",
        "CPU microseconds (user + system) each process spent per decision in the \"max\" phase (the relay: per",
        "record relayed), from psutil around the phase; this is what the ratio above is made of on a shared machine.",
        "",
        "| process | CPU µs per decision |",
        "|---|---|",
    ]
    lines += [f"| {name} | {us} |" for name, us in summary.get("cpu_us_per_decision", {}).items()]
    lines += [f"| {name} | {us} |" for name, us in summary.get("relay_cpu_us_per_record", {}).items()]
    if "load_generator_cpu_us_per_application" in summary:
        lines += [
            "",
            f"The benchmark's own process (load generator and latency consumer) spent {summary['load_generator_cpu_us_per_application']} µs",
            "per application in the same phase; its CPU in every phase is the `bench` column below.",
        ]
    names = sorted({k for p in report.phases for k in p.cpu_s})
    lines += [
        "",
        "## CPU seconds per phase and peak memory per process",
        "",
        "`bench` is the benchmark's own process: it publishes the load and reads the decisions and notifications.",
        "",
        "| system | replicas | rate | " + " | ".join(names) + " | bench |",
        "|---|---|---|" + "---|" * (len(names) + 1),
    ]
    for p in report.phases:
        rate = "max" if p.rate is None else f"{p.rate}/s"
        lines.append(f"| {p.system} | {p.replicas} | {rate} | " + " | ".join(f"{p.cpu_s.get(n, '')}" for n in names) + f" | {p.load_cpu_s:.2f} |")
    lines += ["", "| process | peak RSS (MiB) |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(report.peak_rss_mib.items())]
    lines += [
        "",
        f"Relay payload sizes (the fleet's mean record size per hop, bytes): {report.hop_bytes}.",
        "",
        "```json",
        json.dumps(summary, indent=2),
        "```",
        "",
    ]
    for begin, end in ((NOTES_BEGIN, NOTES_END), (CLUSTER_BEGIN, CLUSTER_END), (BUDGET_BEGIN, BUDGET_END)):  # kept sections
        kept = kept_section(path, begin, end)
        if kept:
            lines += [kept, ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def _time_lines(report: BenchReport, summary: dict[str, Any]) -> list[str]:
    """The "where the milliseconds go" section: each hop, each consumer's stages, the loop lag."""
    lines = [
        "## Where the milliseconds go",
        "",
        "Each hop's latency, p50 / p99 in ms, from the record timestamps (the application's `occurred_at`, then",
        "the time each writer stamped its record, before its produce request went out):",
        "",
        "| system | rate | applied -> scored | scored -> decided | decided -> notified |",
        "|---|---|---|---|---|",
    ]
    for p in report.phases:
        if p.hops and p.rate is not None:
            lines.append(f"| {p.system} | {p.rate}/s | " + " | ".join(f"{h.p50} / {h.p99}" for h in p.hops.values()) + " |")
    lines += [
        "",
        "Each consumer's batches (from the services' `creditwindow_batch_*` metrics, read around the phase): how many,",
        "records per batch (mean, and the p50 / p90 histogram bucket), and the mean ms per batch in each stage",
        "(`shared/messaging/stages.py` says what each is; `commit` runs in the background, beside the next batches):",
        "",
        "| rate | consumer | batches | records per batch (p50 / p90) | " + " | ".join(STAGES) + " |",
        "|---|---|---|---|" + "---|" * len(STAGES),
    ]
    for p in report.phases:
        if p.system != "fleet" or p.replicas != 1:
            continue
        rate = "max" if p.rate is None else f"{p.rate}/s"
        for consumer, figures in p.stages.items():
            ms = figures["ms_per_batch"]
            lines.append(
                f"| {rate} | {consumer} | {figures['batches']:,} | {figures['records_per_batch']} "
                f"({figures['records_per_batch_p50']} / {figures['records_per_batch_p90']}) | " + " | ".join(f"{ms[s]:.2f}" for s in STAGES) + " |"
            )
    lagged = [p for p in report.phases if p.system == "fleet" and p.replicas == 1 and p.loop_lag]
    names = sorted({name for p in lagged for name in p.loop_lag})
    lines += ["", "The event loop's lag (how late a 50 ms timer ran), mean / p99 bucket in ms:", ""]
    lines += ["| rate | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for p in lagged:
        cells = (f"{p.loop_lag[n]['mean_ms']} / {p.loop_lag[n]['p99_ms_at_most']}" if n in p.loop_lag else "" for n in names)
        lines.append(f"| {'max' if p.rate is None else f'{p.rate}/s'} | " + " | ".join(cells) + " |")
    if "latency_targets" in summary:
        lines += ["", f"Latency against the targets (issue 28: at most 2 and 4): {summary['latency_targets']}."]
    return [*lines, ""]


def run_bench(plan: BenchPlan, *, console: Console | None = None, report_path: Path | None = None) -> BenchReport:
    console = console or Console()
    report = asyncio.run(_run(plan, console))
    if report_path is not None:
        write_report(report, report_path)
    return report


BUDGET_BEGIN, BUDGET_END = "<!-- BEGIN budget-bench -->", "<!-- END budget-bench -->"
# Written by hand (why the latency grows with load, and what changed): kept when the page is regenerated.
NOTES_BEGIN, NOTES_END = "<!-- BEGIN latency-notes -->", "<!-- END latency-notes -->"


def print_report(report: BenchReport, console: Console) -> None:
    table = Table("system", "replicas", "rate", "decided", "decisions/s", "p50 ms", "p95 ms", "p99 ms", "notif p99 ms", title="creditwindow bench")
    for p in report.phases:
        table.add_row(
            p.system, str(p.replicas), "max" if p.rate is None else f"{p.rate}/s", f"{p.decided:,}/{p.sent:,}",
            f"{p.decisions_per_s:,.0f}", str(p.to_decision.p50), str(p.to_decision.p95), str(p.to_decision.p99),
            str(p.to_notification.p99),
        )  # fmt: skip
    console.print(table)
    summary = report.summary()
    if "cpu_us_per_decision" in summary:
        console.print(f"CPU µs per decision: {summary['cpu_us_per_decision']}; relay per record: {summary.get('relay_cpu_us_per_record')}")
        console.print(f"load generator CPU s per phase: {summary['load_generator_cpu_s']}")


DEFAULT_REPORT = REPO_ROOT / "docs" / "benchmarks.md"

