#!/usr/bin/env bash
# A Docker engine on a Debian machine without systemd (CI, these sandboxes), from Debian's packages.
#
#   engine.sh start   install what is missing (docker.io, debootstrap, compose v2), start dockerd
#                     when no engine answers; its pid goes to .cache/engine/dockerd.pid
#   engine.sh stop    stop dockerd, only if `start` started it (an engine found running is left alone)
#
# Compose v2: Debian 12 ships only compose v1. Debian 13's docker-compose (2.x) and docker-buildx
# packages need nothing newer than bookworm's libc, so they are downloaded from the machine's own
# Debian mirror with a private apt state (the machine's apt sources are not touched) and installed
# with dpkg. Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
STATE=${CW_HOME:-$PWD/.cache}/engine
PIDFILE=$STATE/dockerd.pid
say() { printf '[engine] %s\n' "$*" >&2; }

answers() { timeout 10 docker info >/dev/null 2>&1; }

install_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

install_compose() {
  docker compose version >/dev/null 2>&1 && return
  local archive security apt=$STATE/apt-trixie
  read -r archive security < <(python3 deploy/images/debian_mirrors.py)
  [ -n "$archive" ] || { say "no Debian mirror in /etc/apt/sources.list*: install docker compose v2 by hand"; exit 1; }
  say "compose v2: downloading Debian 13's docker-compose and docker-buildx"
  rm -rf "$apt" && mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/debs"
  echo "deb $archive trixie main" >"$apt/sources.list"
  local private=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
                 -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" -o Dir::State::status=/var/lib/dpkg/status -o APT::Sandbox::User=root)
  apt-get -qq "${private[@]}" update
  (cd "$apt/debs" && apt-get -qq "${private[@]}" download docker-compose docker-buildx)
  dpkg -i "$apt"/debs/*.deb >/dev/null
  rm -rf "$apt"
  docker compose version >&2
}

start() {
  install_packages
  if answers; then
    say "a Docker engine answers already: using it"
  else
    mkdir -p "$STATE"
    say "starting dockerd (log: $STATE/dockerd.log)"
    setsid nohup dockerd >"$STATE/dockerd.log" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    for _ in $(seq 1 120); do answers && break; sleep 0.5; done
    answers || { tail -20 "$STATE/dockerd.log" >&2; say "dockerd did not answer within 60 s"; exit 1; }
  fi
  install_compose
}

stop() {
  [ -f "$PIDFILE" ] || { say "dockerd was not started by this script: left running"; return; }
  local pid
  pid=$(cat "$PIDFILE")
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]; then
    say "stopping dockerd ($pid)"
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
