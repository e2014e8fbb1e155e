#!/bin/bash
# Apache Kafka (KRaft) from the official jars, configured like the official apache/kafka image:
# every KAFKA_FOO_BAR variable becomes foo.bar in server.properties (`__` -> `_`, `___` -> `-`),
# CLUSTER_ID formats the storage on first start. Without any KAFKA_* setting it runs the official
# image's single-node default (PLAINTEXT on :9092, advertised as localhost:9092). So the same
# compose file and the same testcontainers code drive this image and apache/kafka alike.
set -euo pipefail

CONF=/var/lib/kafka/server.properties
CP='/opt/kafka/libs/*'
# Variables of the launcher, not broker properties (the official image skips the same ones).
NOT_PROPERTIES=' HEAP_OPTS OPTS JVM_PERFORMANCE_OPTS GC_LOG_OPTS LOG4J_OPTS LOG4J_ROOT_LOGLEVEL LOG4J_LOGGERS TOOLS_LOG4J_LOGLEVEL JMX_OPTS JMX_PORT JMX_HOSTNAME VERSION DEBUG '

property_lines() {
  local name key
  while IFS= read -r name; do
    key=${name#KAFKA_}
    case "$NOT_PROPERTIES" in *" $key "*) continue ;; esac
    key=${key//___/-}
    key=${key//__/$'\x01'}
    key=${key//_/.}
    key=${key//$'\x01'/_}
    printf '%s=%s\n' "${key,,}" "${!name}"
  done < <(compgen -e | grep '^KAFKA_' | sort)
}

lines=$(property_lines)
if [ -z "$lines" ]; then
  lines="process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
advertised.listeners=PLAINTEXT://localhost:9092
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1"
  CLUSTER_ID=${CLUSTER_ID:-5L6g3nShT-eMCtK--X86sw}
fi
case "$lines" in *log.dirs=*) ;; *) lines+=$'\nlog.dirs=/var/lib/kafka/data' ;; esac
printf '%s\n' "$lines" > "$CONF"

LEVEL=${KAFKA_LOG4J_ROOT_LOGLEVEL:-INFO}
LOG_OPTS="-Dorg.slf4j.simpleLogger.defaultLogLevel=${LEVEL,,} -Dorg.slf4j.simpleLogger.showDateTime=true"

if [ -n "${CLUSTER_ID:-}" ]; then
  # --ignore-formatted: a kept volume starts again with its data
  java -Xmx256m $LOG_OPTS -cp "$CP" kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$CONF" --ignore-formatted
fi

# shellcheck disable=SC2086 # the *_OPTS variables are lists of JVM flags
exec java ${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G} ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent} \
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true $LOG_OPTS ${KAFKA_OPTS:-} -cp "$CP" kafka.Kafka "$CONF"
