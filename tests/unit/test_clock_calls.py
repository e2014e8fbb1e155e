"""The runtime reads the time only through its injected clock (`shared/clock.py`).

Any reference to a wall-clock function in `shared/`, `services/` or `creditwindow/` fails this test:
calls (`datetime.now(UTC)`, `time.time()`, `date.today()`) and references alike (`clock=time.time`
as a default argument reads the wall just the same, later). Only `shared/clock.py` may, and the
envelope's default for events built by upstream tools (`system_now`). Monotonic timers
(`time.monotonic`, `time.perf_counter`, the event loop's `time()`) measure durations, not dates,
and are allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from shared.settings import REPO_ROOT

RUNTIME = ("shared", "services", "creditwindow")
WALL_CLOCK = frozenset(
    {
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "time.time",
        "time.time_ns",
        "time.localtime",
        "time.gmtime",
        "time.ctime",
        "time.asctime",
        "time.strftime",
        "shared.clock.system_now",
        "shared.contracts.envelope.utc_now",
        "shared.contracts.utc_now",
    }
)
# module -> the wall-clock names it may use, and why
ALLOWED: dict[str, frozenset[str]] = {
    "shared/clock.py": frozenset({"datetime.datetime.now"}),  # the one clock
    "shared/contracts/envelope.py": frozenset({"shared.clock.system_now"}),  # default of events upstream tools build
}


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> the dotted name it stands for, from the module's imports."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def wall_clock_reads(source: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every reference to a wall-clock function in `source`."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Name, ast.Attribute)) or not isinstance(node.ctx, ast.Load):
            continue
        dotted = _dotted(node)
        if dotted is None:
            continue
        head, _, rest = dotted.partition(".")
        resolved = aliases.get(head, head) + (f".{rest}" if rest else "")
        if resolved in WALL_CLOCK:
            found.append((node.lineno, resolved))
    return found


def _runtime_modules() -> list[Path]:
    return sorted(p for root in RUNTIME for p in (REPO_ROOT / root).rglob("*.py"))


def test_the_runtime_reads_the_wall_clock_only_in_the_clock_module() -> None:
    offences = []
    for path in _runtime_modules():
        relative = path.relative_to(REPO_ROOT).as_posix()
        allowed = ALLOWED.get(relative, frozenset())
        for line, name in wall_clock_reads(path.read_text(encoding="utf-8")):
            if name not in allowed:
                offences.append(f"{relative}:{line}: {name} (take the time from the injected Clock)")
    assert not offences, "\n".join(offences)


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import UTC, datetime\nx = datetime.now(UTC)",
        "import datetime\nx = datetime.datetime.now()",
        "from datetime import datetime as dt\nx = dt.utcnow()",
        "import time\nx = time.time()",
        "from time import time\nx = time()",
        "import time\ndef f(clock=time.time):\n    return clock()",
        "from datetime import date\nx = date.today()",
        "from shared.clock import system_now\nx = system_now()",
        "import time as t\nx = t.strftime('%H')",
    ],
)
def test_the_check_finds_every_way_of_reading_the_wall(source: str) -> None:
    assert wall_clock_reads(source)


@pytest.mark.parametrize(
    "source",
    [
        "import time\nx = time.monotonic()",
        "import time\nx = time.perf_counter()",
        "import asyncio\nx = asyncio.get_running_loop().time()",
        "from shared.clock import SystemClock\nx = SystemClock().now()",
        "def f(clock):\n    return clock.now()",
        "from datetime import datetime\nx = datetime.fromtimestamp(0)",
    ],
)
def test_durations_and_the_injected_clock_pass(source: str) -> None:
    assert not wall_clock_reads(source)
