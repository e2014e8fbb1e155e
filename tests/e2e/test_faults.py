"""The fault suite in a shorter form that fits CI: 2,000 applications, every fault, all the checks.

`make faults` runs the full 20,000-application version and writes docs/reliability.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

from devtools.faults import FaultPlan, run_faults


def test_the_fleet_loses_nothing_and_doubles_nothing_under_faults(endpoints: dict[str, str], tmp_path: Path) -> None:
    # The broker and Redis are stopped and started only when they are the local platform's own.
    local = not os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    plan = FaultPlan(applications=2_000, publish_seconds=110.0, seed=7, infrastructure=local)
    report = run_faults(plan, console=Console(file=open(os.devnull, "w")), report_path=tmp_path / "reliability.md")  # noqa: SIM115
    failed = {name: check for name, check in report.checks.items() if not check["ok"]}
    assert not failed, failed
    assert report.counts["published_malformed"] > 0 and report.counts["published_duplicates"] > 0
    kinds = {f.kind for f in report.faults}
    assert {"sigkill", "replica_down", "poison_record", "redis_data_loss"} <= kinds
    assert set(report.summary()["fault_kinds"]) == kinds
    assert not local or {"broker", "redis"} <= kinds
    assert all(f.recovered_after_s is not None for f in report.faults), [(f.kind, f.target) for f in report.faults]
    assert report.counts["unexpected_exits"] == 0
