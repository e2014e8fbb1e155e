"""The fault suite on the cluster in a shorter form (2,000 applications): every fault of the
single-node suite but the broker and Redis restarts, plus kill -9 of the leader of most credit.scores
partitions, of the active controller and of the Redis master; all the checks, per-customer order
included. `creditwindow faults --cluster` runs 20,000 and writes its section of docs/reliability.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from devtools.cluster import LocalCluster
from devtools.faults import CLUSTER_KINDS, FaultPlan, run_faults


def test_the_fleet_loses_nothing_doubles_nothing_and_keeps_order_when_nodes_die(cluster: LocalCluster, tmp_path: Path) -> None:
    seconds = float(os.environ.get("CW_CLUSTER_FAULT_SECONDS", "170"))
    plan = FaultPlan(applications=2_000, publish_seconds=seconds, seed=7, cluster=True)
    report = run_faults(plan, console=Console(file=open(os.devnull, "w")), report_path=tmp_path / "reliability.md")  # noqa: SIM115
    failed = {name: check for name, check in report.checks.items() if not check["ok"]}
    assert not failed, failed
    kinds = {f.kind for f in report.faults}
    assert set(CLUSTER_KINDS) <= kinds and {"sigkill", "replica_down", "poison_record", "redis_data_loss"} <= kinds
    summary = report.summary()
    assert all(summary["recovery_s"][kind] is not None for kind in CLUSTER_KINDS), summary["recovery_s"]
    assert set(summary["failover_s"]) == set(CLUSTER_KINDS)
    assert report.counts["unexpected_exits"] == 0
    assert "## On a cluster" in (tmp_path / "reliability.md").read_text()


def test_status_names_the_active_controller_the_leaders_and_the_redis_master(cluster: LocalCluster) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "creditwindow", "dev", "status", "--cluster", "--json"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    status = json.loads(result.stdout)
    assert status["controller"] in (1, 2, 3) and status["leaderless"] == 0
    assert sum(status["leaders"].values()) >= 6 * 6 + 1  # every partition of the fleet's topics has a leader
    assert status["redis_master"] in {f"127.0.0.1:{p}" for p in cluster.layout.redis}
    assert {p["name"] for p in status["parts"]} >= {"kafka-1", "kafka-2", "kafka-3"}
    assert status["topic_differences"] == []
