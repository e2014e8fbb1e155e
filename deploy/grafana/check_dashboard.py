"""Check the Grafana dashboard against the alert rules: `check_dashboard.py DASHBOARD.json RULES.yml`.

Every panel has a query; panel ids are unique; and every metric or recorded series an alert watches
appears on some panel, so an operator paged by an alert finds its figure on the dashboard.
PromQL syntax is checked by promtool for the rules, not for the dashboard's queries. Plain Python:
the rules file is read by a line scan, so it runs before any environment is installed.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

SERIES = re.compile(r"\b(creditwindow[:_][a-z0-9_:]+|kafka_consumergroup_[a-z_]+|faststream_[a-z_]+|up)\b")


def alert_exprs(rules: Path) -> dict[str, str]:
    """alert name -> its expression, read without a YAML library (expressions may span lines)."""
    found: dict[str, str] = {}
    current = None
    for line in rules.read_text().splitlines():
        name = re.match(r"\s*- alert: (\S+)", line)
        if name:
            current = name.group(1)
            found[current] = ""
            continue
        if re.match(r"\s*- record: ", line):
            current = None
            continue
        if current is not None:
            if re.match(r"\s*(for|labels|annotations):", line):
                current = None
                continue
            found[current] += " " + re.sub(r"^\s*expr:\s*>?", "", line)
    return found


def main(dashboard_path: str, rules_path: str) -> int:
    dashboard = json.loads(Path(dashboard_path).read_text())
    panels = dashboard["panels"]
    problems = []
    ids = [p["id"] for p in panels]
    if len(ids) != len(set(ids)):
        problems.append(f"panel ids repeat: {ids}")
    queries = []
    for panel in panels:
        exprs = [t.get("expr", "") for t in panel.get("targets", [])]
        if not exprs or not all(exprs):
            problems.append(f"panel {panel.get('title')!r} has no query")
        queries += exprs
    shown = set(SERIES.findall(" ".join(queries)))
    alerts = alert_exprs(Path(rules_path))
    if not alerts:
        problems.append(f"no alerts found in {rules_path}")
    for alert, expr in alerts.items():
        missing = set(SERIES.findall(expr)) - shown
        if missing:
            problems.append(f"{alert} watches {sorted(missing)}, which no panel shows")
    for problem in problems:
        print(f"FAILED: {problem}")
    if not problems:
        print(f"SUCCESS: {len(panels)} panels show every series the {len(alerts)} alerts watch")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
