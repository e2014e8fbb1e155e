#!/usr/bin/env bash
# `make images`: the project image, and Kafka and Redis images, with or without an image registry.
#
# Where the official images can be pulled (python:3.11-slim, debian:bookworm-slim, apache/kafka,
# redis), they are used. Where they cannot (an air-gapped build network), everything is built from
# Debian's packages and Maven, the same sources as the local platform:
#   local/debian:bookworm        debootstrap from the machine's own Debian mirror, `docker import`
#   local/python:3.11-bookworm   Debian's python3 + venv on it
#   local/kafka:4.1.1            Debian's Java 17 + the Kafka jars Maven resolves from deploy/kafka/pom.xml
#   local/redis:7                Debian's redis-server
# and creditwindow:local on whichever Python base was chosen. CW_IMAGES=local builds the local
# ones even where the official images could be pulled.
#
# Writes .cache/images.env (CW_IMAGE, CW_BASE_IMAGE, CW_KAFKA_IMAGE, CW_REDIS_IMAGE), which the
# compose targets and the testcontainers fixtures read. Safe to run again: a present base image is
# kept, the others are rebuilt from Docker's layer cache (seconds).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CACHE=${CW_HOME:-$ROOT/.cache}
mkdir -p "$CACHE/images"

KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' deploy/kafka/pom.xml)
OFFICIAL_PYTHON=${CW_OFFICIAL_PYTHON_IMAGE:-python:3.11-slim}
OFFICIAL_DEBIAN=${CW_OFFICIAL_DEBIAN_IMAGE:-debian:bookworm-slim}
OFFICIAL_KAFKA=${CW_OFFICIAL_KAFKA_IMAGE:-apache/kafka:$KAFKA_VERSION}
OFFICIAL_REDIS=${CW_OFFICIAL_REDIS_IMAGE:-redis:7}
LOCAL_DEBIAN=local/debian:bookworm
LOCAL_PYTHON=local/python:3.11-bookworm
LOCAL_KAFKA=local/kafka:$KAFKA_VERSION
LOCAL_REDIS=local/redis:7
IMAGE=${CW_IMAGE:-creditwindow:local}

say() { printf '[images] %s\n' "$*" >&2; }
timed() { local label=$1 began=$SECONDS; shift; "$@"; say "$label: $((SECONDS - began)) s"; }

docker info >/dev/null 2>&1 || {
  say "no Docker engine answers. Start one (as root: bash deploy/images/engine.sh start), then run make images again."
  exit 1
}

present() { docker image inspect "$1" >/dev/null 2>&1; }
# An official image is usable when it is here already or can be pulled now (fails at once offline).
usable() {
  [ "${CW_IMAGES:-}" != local ] || return 1
  present "$1" || timeout 120 docker pull -q "$1" >/dev/null 2>&1
}

build_local_debian() {
  local main security rootfs=$CACHE/images/rootfs
  read -r main security < <(python3 deploy/images/debian_mirrors.py)
  main=${DEBIAN_MIRROR:-$main}
  security=${DEBIAN_SECURITY_MIRROR:-$security}
  [ -n "$main" ] || { say "no Debian mirror found in /etc/apt/sources.list*: set DEBIAN_MIRROR"; exit 1; }
  command -v debootstrap >/dev/null || { say "debootstrap is missing: apt-get install -y debootstrap"; exit 1; }
  [ "$(id -u)" = 0 ] || { say "debootstrap needs root"; exit 1; }
  say "debootstrap bookworm from the machine's Debian mirror (about a minute)"
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$main" >"$CACHE/images/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/images/debootstrap.log" >&2; exit 1; }
  {
    echo "deb $main bookworm main"
    echo "deb $main bookworm-updates main"
    [ -z "$security" ] || echo "deb $security bookworm-security main"
  } >"$rootfs/etc/apt/sources.list"
  # As in the official Debian images: no recommends, and no package files kept in any layer.
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$rootfs/etc/apt/apt.conf.d/90container"
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
APT
  # Where HTTPS leaves this machine through an intercepting proxy, its CA is one of the host's
  # extra CAs: the image trusts them too, or pip and Maven inside builds fail. Such an image
  # belongs to this machine: it is labelled, and never to be pushed anywhere.
  local extra_cas=no
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
    chroot "$rootfs" update-ca-certificates >/dev/null
    extra_cas=yes
  fi
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/tmp/* "$rootfs"/var/log/*.log
  : >"$rootfs/etc/resolv.conf"
  tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["bash"]' \
    --change "LABEL creditwindow.host-ca-certificates=$extra_cas creditwindow.push=never" \
    - "$LOCAL_DEBIAN" >/dev/null
  rm -rf "$rootfs"
}

kafka_libs() {
  # The same jars and the same cache as the local platform (devtools/platform.py).
  local libs=$CACHE/kafka/libs stamp=$CACHE/kafka/libs.sha256 digest
  digest=$(sha256sum deploy/kafka/pom.xml | cut -d' ' -f1)
  if [ -d "$libs" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ]; then return; fi
  command -v mvn >/dev/null || { say "Maven is missing: it resolves the Kafka jars (apt-get install -y maven)"; exit 1; }
  say "resolving the Apache Kafka jars with Maven"
  rm -rf "$CACHE/kafka/libs.staging"
  mvn -q -B -Dstyle.color=never -f deploy/kafka/pom.xml org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DoutputDirectory="$CACHE/kafka/libs.staging" -DincludeScope=runtime
  rm -rf "$libs"
  mv "$CACHE/kafka/libs.staging" "$libs"
  echo "$digest" >"$stamp"
}

build() { docker build -q "$@" >/dev/null; }

# --- Debian base (for Kafka, Redis and the local Python) -------------------------------------
if usable "$OFFICIAL_DEBIAN"; then
  DEBIAN=$OFFICIAL_DEBIAN
else
  DEBIAN=$LOCAL_DEBIAN
  present "$LOCAL_DEBIAN" || timed "$LOCAL_DEBIAN (debootstrap)" build_local_debian
fi

# --- Python base and the project image -------------------------------------------------------
if [ -n "${CW_BASE_IMAGE:-}" ]; then
  BASE=$CW_BASE_IMAGE
elif usable "$OFFICIAL_PYTHON"; then
  BASE=$OFFICIAL_PYTHON
else
  BASE=$LOCAL_PYTHON
  timed "$LOCAL_PYTHON" build --build-arg DEBIAN_IMAGE="$DEBIAN" -t "$LOCAL_PYTHON" -f deploy/images/python.Dockerfile deploy/images
fi
timed "$IMAGE on $BASE" build --build-arg BASE_IMAGE="$BASE" -t "$IMAGE" -f deploy/docker/Dockerfile .

# --- Kafka and Redis ------------------------------------------------------------------------
if [ -n "${CW_KAFKA_IMAGE:-}" ]; then
  KAFKA=$CW_KAFKA_IMAGE
elif usable "$OFFICIAL_KAFKA"; then
  KAFKA=$OFFICIAL_KAFKA
else
  KAFKA=$LOCAL_KAFKA
  kafka_libs
  context=$CACHE/images/kafka-context
  rm -rf "$context" && mkdir -p "$context"
  cp deploy/kafka/Dockerfile deploy/kafka/entrypoint.sh "$context/"
  cp -rl "$CACHE/kafka/libs" "$context/libs" 2>/dev/null || cp -r "$CACHE/kafka/libs" "$context/libs"
  timed "$LOCAL_KAFKA" build --build-arg DEBIAN_IMAGE="$DEBIAN" -t "$LOCAL_KAFKA" "$context"
  rm -rf "$context"
fi
if [ -n "${CW_REDIS_IMAGE:-}" ]; then
  REDIS=$CW_REDIS_IMAGE
elif usable "$OFFICIAL_REDIS"; then
  REDIS=$OFFICIAL_REDIS
else
  REDIS=$LOCAL_REDIS
  timed "$LOCAL_REDIS" build --build-arg DEBIAN_IMAGE="$DEBIAN" -t "$LOCAL_REDIS" deploy/redis
fi

cat >"$CACHE/images.env" <<EOF
CW_IMAGE=$IMAGE
CW_BASE_IMAGE=$BASE
CW_KAFKA_IMAGE=$KAFKA
CW_REDIS_IMAGE=$REDIS
EOF
say "images ready ($CACHE/images.env):"
docker image ls --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' | grep -F -e "$IMAGE" -e "$BASE" -e "$KAFKA" -e "$REDIS" -e "$DEBIAN" >&2 || true
