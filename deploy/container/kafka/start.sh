#!/usr/bin/env bash
# Format the KRaft storage on first start, then run the broker in the foreground.
set -euo pipefail
java=(java -Xmx${KAFKA_HEAP:-512m} -Xms${KAFKA_HEAP:-512m} -XX:+UseG1GC -Djava.awt.headless=true
      -Dlog4j.configuration=file:/opt/kafka/log4j.properties -cp "/opt/kafka/libs/*")
if [ ! -f /var/lib/kafka/data/meta.properties ]; then
  "${java[@]}" kafka.tools.StorageTool format -t "${KAFKA_CLUSTER_ID:-fwcompose0000000000001}" \
    -c /opt/kafka/server.properties --ignore-formatted
fi
exec "${java[@]}" kafka.Kafka /opt/kafka/server.properties
