"""`creditwindow profile`: where each service's CPU goes under load, sampled with py-spy.

The fleet runs as it does in `creditwindow bench` (one process per service on the local platform)
while it works through a backlog of applications published before it started (as in the benchmark's
"max" phase, where they are all published at once); py-spy samples every service process for a
while without stopping it (`--nonblocking`), once per process, as collapsed stacks. From them: a flame graph (SVG) per service, and the "where the time goes" table:
for each part of the work, the share of the process's samples whose stack passes through it
(inclusive: a part that calls another counts both). Each run is kept as `docs/profile/<label>.json`
and `docs/profile.md` shows every label side by side (`before` and `after` first) and links the graphs.

Only 127.0.0.1; bounded in applications and seconds; it stops its processes and deletes its namespace.
"""

from __future__ import annotations

import asyncio
import html
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from rich.console import Console

from devtools.fleet import Fleet
from devtools.germancredit import applications
from devtools.namespaces import delete_namespace
from devtools.platform import LocalPlatform
from shared.messaging import ensure_topics
from shared.messaging.topic_io import Publisher
from shared.settings import REPO_ROOT, Settings

__all__ = ["PARTS", "ProfilePlan", "ServiceProfile", "flame_graph", "run_profile", "shares", "write_profile_doc"]

# What each service spends its time on: a part is matched by any of its frames' names (a substring of
# "function (file)" as py-spy writes it). Parts overlap where code nests; "other" is what no part claims.
PARTS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "scoring": [
        ("scorecard: points, PD, reasons", ("scorecard.py",)),
        ("recourse search", ("recourse.py",)),
        ("decoding and validating applications", ("wire.py", "model_validate_json")),
        ("encoding scores (pydantic JSON)", ("model_dump_json",)),
        ("log lines (structlog, redaction)", ("structlog", "shared/logging.py")),
        ("metrics (PSI, histograms)", ("metrics.py", "prometheus_client")),
        ("Kafka client (aiokafka)", ("aiokafka",)),
        ("FastStream (subscriber, middlewares)", ("faststream",)),
    ],
    "policy": [
        ("the rules and the decision events", ("rules.py", "decisions.py")),
        ("the book in Redis (script call, JSON in and out)", ("redis_book.py", "redis_state.py")),
        ("Redis client (redis-py, hiredis)", ("redis/",)),
        ("decoding and validating scores", ("wire.py", "model_validate_json")),
        ("encoding decisions (pydantic JSON)", ("model_dump_json",)),
        ("log lines (structlog, redaction)", ("structlog", "shared/logging.py")),
        ("metrics", ("metrics.py", "prometheus_client")),
        ("Kafka client (aiokafka)", ("aiokafka",)),
        ("FastStream (subscriber, middlewares)", ("faststream",)),
    ],
    "notification": [
        ("rendering the disclosure (Jinja2, Babel)", ("disclosure.py", "jinja2", "babel")),
        ("the ledger in Redis", ("redis_ledger.py", "redis_webhooks.py", "redis_state.py")),
        ("Redis client (redis-py, hiredis)", ("redis/",)),
        ("decoding and validating decisions", ("wire.py", "model_validate_json")),
        ("encoding notices (pydantic JSON)", ("model_dump_json",)),
        ("log lines (structlog, redaction)", ("structlog", "shared/logging.py")),
        ("metrics", ("metrics.py", "prometheus_client")),
        ("Kafka client (aiokafka)", ("aiokafka",)),
        ("FastStream (subscriber, middlewares)", ("faststream",)),
    ],
}


@dataclass(frozen=True, slots=True)
class ProfilePlan:
    applications: int = 60_000
    seconds: float = 15.0
    rate: int = 100  # samples a second per process
    out: Path = REPO_ROOT / "docs" / "profile"
    label: str = "now"  # the graphs are written as <service>-<label>.svg, the shares as <label>.json
    keep_stacks: bool = False  # keep py-spy's collapsed stacks (<service>-<label>.collapsed) to dig further


@dataclass(slots=True)
class ServiceProfile:
    service: str
    samples: int = 0
    parts: dict[str, float] = field(default_factory=dict)
    graph: Path | None = None
    cpu_s: float = 0.0  # the process's CPU seconds while it was sampled (psutil)
    top: list[tuple[str, float]] = field(default_factory=list)  # the busiest frames of its own (self time)


def shares(collapsed: str, parts: list[tuple[str, tuple[str, ...]]]) -> tuple[int, dict[str, float]]:
    """From py-spy's collapsed stacks (busy samples only: py-spy leaves idle threads out): how many
    samples, and each part's share of them. Pure."""
    total = 0
    hits: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        for name, needles in parts:
            if any(needle in stack for needle in needles):
                hits[name] += int(count)
    return total, {name: hits[name] / max(1, total) for name, _ in parts}


async def _load(settings: Settings, plan: ProfilePlan) -> None:
    async with Publisher(settings, linger_ms=5) as publisher:
        futures = [await publisher.send(settings.topics.applications, a) for a in applications(f"prof{uuid.uuid4().hex[:6]}", count=plan.applications)]
        await asyncio.gather(*futures)


def self_time(collapsed: str, top: int = 12) -> list[tuple[str, float]]:
    """The frames that hold the most samples as the innermost frame (self time), as shares. Pure."""
    total = 0
    leaves: Counter[str] = Counter()
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        leaves[stack.rsplit(";", 1)[-1]] += int(count)
    return [(frame, n / max(1, total)) for frame, n in leaves.most_common(top)]


def flame_graph(collapsed: str, title: str, *, width: int = 1200, row: int = 16) -> str:
    """A flame graph (SVG, no script: hover a box for its frame and share) from collapsed stacks. Pure."""
    root: dict[str, object] = {"n": 0, "kids": {}}
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        node = root
        node["n"] = int(node["n"]) + int(count)  # type: ignore[call-overload]
        for frame in stack.split(";"):
            kids: dict[str, dict[str, object]] = node["kids"]  # type: ignore[assignment]
            node = kids.setdefault(frame, {"n": 0, "kids": {}})
            node["n"] = int(node["n"]) + int(count)  # type: ignore[call-overload]
    total = max(1, int(root["n"]))  # type: ignore[call-overload]
    boxes: list[tuple[int, float, float, str, int]] = []  # depth, x, w, frame, samples
    depth_max = 0

    def walk(node: dict[str, object], depth: int, x: float) -> None:
        nonlocal depth_max
        kids: dict[str, dict[str, object]] = node["kids"]  # type: ignore[assignment]
        for frame, kid in sorted(kids.items()):
            w = int(kid["n"]) / total * width  # type: ignore[call-overload]
            if w >= 0.3:
                boxes.append((depth, x, w, frame, int(kid["n"])))  # type: ignore[call-overload]
                depth_max = max(depth_max, depth)
                walk(kid, depth + 1, x)
            x += w

    walk(root, 0, 0.0)
    height = (depth_max + 1) * row + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">',
        f'<rect width="{width}" height="{height}" fill="#fdfdf8"/>',
        f'<text x="4" y="16" font-size="13">{html.escape(title)} ({total} samples)</text>',
    ]
    for depth, x, w, frame, n in boxes:
        y = height - (depth + 1) * row - 4
        hue = 10 + (sum(frame.encode()) % 45)
        label = html.escape(frame)
        out.append(
            f'<g><title>{label}: {n} samples, {100 * n / total:.1f}%</title>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 1}" fill="hsl({hue},85%,62%)"/>'
        )
        chars = int(w / 6.6)
        if chars >= 4:
            shown = frame if len(frame) <= chars else frame[: chars - 2] + ".."
            out.append(f'<text x="{x + 2:.1f}" y="{y + row - 4}">{html.escape(shown)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _process_cpu(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


def run_profile(plan: ProfilePlan, console: Console | None = None) -> list[ServiceProfile]:
    console = console or Console()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise RuntimeError("py-spy not found: pip install py-spy (the `dev` extra has it)")
    base = Settings()
    LocalPlatform(base, say=lambda line: console.print(line, highlight=False)).up()
    namespace = f"prof{time.strftime('%H%M%S')}"
    settings = base.model_copy(update={"topic_namespace": namespace})
    asyncio.run(ensure_topics(settings))
    plan.out.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(env={"CW_TOPIC_NAMESPACE": namespace}, log_dir=base.home / "logs" / namespace)
    profiles: list[ServiceProfile] = []
    try:
        # The whole load is on the topic before the fleet starts (as in the benchmark's "max" phase, all
        # at once), so no load generator competes with the services for the CPU while they are sampled.
        console.print(f"publishing {plan.applications:,} applications ...")
        asyncio.run(_load(settings, plan))
        fleet.start()
        fleet.wait_ready(90)
        time.sleep(2.0)  # past the first batches
        # One sampler per process (raw collapsed stacks): the graph and the table come from the same samples.
        samplers = []
        for name, proc in fleet.processes.items():
            assert proc.process is not None
            service = name.rsplit("-", 1)[0]
            raw = plan.out / f"{service}-{plan.label}.collapsed"
            command = [spy, "record", "--nonblocking", "--pid", str(proc.process.pid), "--rate", str(plan.rate),
                       "--duration", str(int(plan.seconds)), "--format", "raw", "-o", str(raw)]  # fmt: skip
            pid = proc.process.pid
            samplers.append((service, pid, raw, _process_cpu(pid), subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        cpu_after: dict[str, float] = {}
        for service, pid, _, _, sampler in samplers:
            sampler.wait(timeout=plan.seconds + 60)
            cpu_after[service] = _process_cpu(pid)
        for service, _, raw, cpu_before, _ in samplers:
            collapsed = raw.read_text() if raw.exists() else ""
            total, found = shares(collapsed, PARTS[service])
            graph = plan.out / f"{service}-{plan.label}.svg"
            graph.write_text(flame_graph(collapsed, f"{service} ({plan.label})"))
            profiles.append(
                ServiceProfile(service, total, found, graph, round(cpu_after[service] - cpu_before, 2), self_time(collapsed))
            )
            if not plan.keep_stacks:
                raw.unlink(missing_ok=True)
    finally:
        fleet.stop()
        asyncio.run(delete_namespace(settings))
    _save(plan, profiles)
    return profiles


def _save(plan: ProfilePlan, profiles: list[ServiceProfile]) -> None:
    data = {
        "label": plan.label,
        "taken": time.strftime("%Y-%m-%d %H:%M"),
        "applications": plan.applications,
        "seconds": plan.seconds,
        "rate": plan.rate,
        "services": {
            p.service: {"samples": p.samples, "cpu_s": p.cpu_s, "parts": p.parts, "top": p.top, "graph": p.graph.name if p.graph else None}
            for p in profiles
        },
    }
    (plan.out / f"{plan.label}.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


_BEGIN, _END = "<!-- profile tables: generated by `creditwindow profile`, do not edit -->", "<!-- end of profile tables -->"


def _labels(out: Path) -> list[dict[str, object]]:
    found = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}
    order = [label for label in ("before", "after") if label in found] + sorted(set(found) - {"before", "after"})
    return [found[label] for label in order]


def profile_tables(out: Path, doc: Path) -> str:
    """The generated part of the profile page: every saved label side by side, per service."""
    runs = _labels(out)
    lines = [_BEGIN, ""]
    if not runs:
        return "\n".join([*lines, "No profile yet: run `creditwindow profile --label before`.", "", _END])
    labels = [str(r["label"]) for r in runs]
    for service, parts in PARTS.items():
        lines += [f"### {service}", ""]
        graphs = []
        for r in runs:
            info = r["services"].get(service)  # type: ignore[attr-defined]
            if info and info.get("graph"):
                rel = (out / info["graph"]).relative_to(doc.parent)
                graphs.append(f"[{r['label']}]({rel})")
        lines += [f"Flame graphs: {', '.join(graphs)}." if graphs else "", ""]
        lines += ["| part of the work | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
        for name, _ in parts:
            cells = []
            for r in runs:
                info = r["services"].get(service)  # type: ignore[attr-defined]
                cells.append(f"{100 * info['parts'].get(name, 0):.0f}%" if info else "")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        samples = [str(r["services"].get(service, {}).get("samples", "")) for r in runs]  # type: ignore[attr-defined]
        cpu = [str(r["services"].get(service, {}).get("cpu_s", "")) for r in runs]  # type: ignore[attr-defined]
        lines.append("| *busy samples* | " + " | ".join(samples) + " |")
        lines.append("| *process CPU s while sampled* | " + " | ".join(cpu) + " |")
        lines.append("")
        for r in runs:
            info = r["services"].get(service)  # type: ignore[attr-defined]
            if not info or not info.get("top"):
                continue
            top = "; ".join(f"`{frame}` {100 * share:.1f}%" for frame, share in info["top"][:6])
            lines += [f"Most self time ({r['label']}): {top}.", ""]
    lines += [
        "Runs: " + "; ".join(f"{r['label']}: {r['taken']}, {r['applications']:,} applications, {r['seconds']} s at {r['rate']} Hz" for r in runs) + ".",  # type: ignore[str-format]
        "",
        _END,
    ]
    return "\n".join(lines)


def write_profile_doc(out: Path, doc: Path) -> None:
    """Put the tables of every saved run into `doc` between the markers (the rest of the page is prose)."""
    tables = profile_tables(out, doc)
    text = doc.read_text() if doc.exists() else "# Where the time goes\n\n" + _BEGIN + "\n" + _END + "\n"
    if _BEGIN in text and _END in text:
        head, rest = text.split(_BEGIN, 1)
        _, tail = rest.split(_END, 1)
        text = head + tables + tail
    else:
        text = text.rstrip("\n") + "\n\n" + tables + "\n"
    doc.write_text(text)
