#!/usr/bin/env bash
# `make rules-check`: the scrape configuration, the alert rules and their unit tests, with promtool
# from Debian's prometheus package (unpacked into .cache/tools when promtool is not on PATH, so no
# Prometheus daemon is installed or started); then the Grafana dashboard against the same metrics.
set -euo pipefail
cd "$(dirname "$0")/../.."
TOOLS=${CW_HOME:-$PWD/.cache}/tools

promtool=$(command -v promtool || true)
if [ -z "$promtool" ]; then
  promtool=$TOOLS/prometheus/usr/bin/promtool
  if [ ! -x "$promtool" ]; then
    download=$(mktemp -d)
    trap 'rm -rf "$download"' EXIT
    (cd "$download" && apt-get -qq -o APT::Sandbox::User=root download prometheus 2>/dev/null) \
      || { apt-get update -qq && (cd "$download" && apt-get -qq -o APT::Sandbox::User=root download prometheus); }
    mkdir -p "$TOOLS/prometheus"
    dpkg-deb -x "$download"/prometheus_*.deb "$TOOLS/prometheus"
  fi
fi
"$promtool" --version 2>&1 | head -1
"$promtool" check config deploy/prometheus/prometheus.yml
"$promtool" check rules deploy/prometheus/rules/*.yml
"$promtool" test rules deploy/prometheus/tests/*.yml
python3 deploy/grafana/check_dashboard.py deploy/grafana/creditwindow.json deploy/prometheus/rules/creditwindow.rules.yml
