"""docs/reliability.md is hand-written prose with sections that runs write: a run replaces its own
section only, so `make faults` never erases what the page explains."""

from __future__ import annotations

from pathlib import Path

from devtools.faults import (
    CLUSTER_BEGIN,
    CLUSTER_END,
    FAULTS_BEGIN,
    FAULTS_END,
    Fault,
    FaultPlan,
    FaultReport,
    write_report,
)
from devtools.redis_memory import BEGIN as MEMORY_BEGIN
from devtools.redis_memory import END as MEMORY_END
from shared.settings import REPO_ROOT

PROSE = "# Reliability\n\nWhat the fleet does about faults, written by hand.\n"
OLD_RUN = f"{FAULTS_BEGIN}\nold single-node figures\n{FAULTS_END}"
OLD_CLUSTER = f"{CLUSTER_BEGIN}\nold cluster figures\n{CLUSTER_END}"
MEMORY = f"{MEMORY_BEGIN}\n270.4 MiB per 100,000 customers\n{MEMORY_END}"


def _page(tmp_path: Path) -> Path:
    page = tmp_path / "reliability.md"
    page.write_text(f"{PROSE}\n{OLD_RUN}\n\nMore prose between the sections.\n\n{OLD_CLUSTER}\n\n{MEMORY}\n")
    return page


def _report(*, cluster: bool) -> FaultReport:
    report = FaultReport(plan=FaultPlan(applications=2_000, cluster=cluster), namespace="faults-unit", seconds=12.0)
    report.checks = {"valid_applications_decided_once": {"ok": True, "missing": 0}}
    report.counts = {"published_valid": 1_900}
    report.faults = [Fault(kind="sigkill", target="policy-0", started=1.0, restored=2.0, recovered_after_s=0.5)]
    return report


def test_a_single_node_run_replaces_its_section_and_keeps_the_prose_and_the_other_sections(tmp_path: Path) -> None:
    page = _page(tmp_path)
    write_report(_report(cluster=False), page)
    text = page.read_text()
    assert text.startswith(PROSE)
    assert "More prose between the sections." in text and OLD_CLUSTER in text and MEMORY in text
    assert "old single-node figures" not in text
    run = text[text.index(FAULTS_BEGIN) : text.index(FAULTS_END)]
    assert "namespace `faults-unit`" in run and "| valid applications decided once | pass |" in run
    assert text.count(FAULTS_BEGIN) == 1


def test_a_cluster_run_replaces_only_its_own_section(tmp_path: Path) -> None:
    page = _page(tmp_path)
    write_report(_report(cluster=True), page)
    text = page.read_text()
    assert text.startswith(PROSE) and OLD_RUN in text and MEMORY in text
    assert "old cluster figures" not in text
    assert "namespace `faults-unit`" in text[text.index(CLUSTER_BEGIN) : text.index(CLUSTER_END)]


def test_the_reliability_page_marks_the_section_of_each_run_once() -> None:
    text = (REPO_ROOT / "docs" / "reliability.md").read_text()
    for begin, end in ((FAULTS_BEGIN, FAULTS_END), (CLUSTER_BEGIN, CLUSTER_END), (MEMORY_BEGIN, MEMORY_END)):
        assert text.count(begin) == 1 and text.count(end) == 1 and text.index(begin) < text.index(end), begin
    assert not text.startswith("<!--"), "the page opens with what it is for, written by hand"
