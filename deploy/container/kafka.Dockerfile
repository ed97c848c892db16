# A one-node Apache Kafka (KRaft) from a plain Debian base: Debian's Java plus the broker jars
# fetched from Maven Central with mvn, exactly as `framewatch local` does (same pom.xml).
# Build context: the repository root. Used by deploy/compose.local.yaml.
ARG BASE=local/debian:bookworm
FROM ${BASE}
ARG KAFKA_VERSION=4.4.0
COPY deploy/container/extra-ca/ /usr/local/share/ca-certificates/
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && update-ca-certificates \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless maven \
 && rm -rf /var/lib/apt/lists/*
COPY framewatch/data/local/pom.xml framewatch/data/local/log4j.properties /opt/kafka/
RUN mvn -q -B -f /opt/kafka/pom.xml -Dkafka.version=${KAFKA_VERSION} \
      dependency:copy-dependencies -DoutputDirectory=/opt/kafka/libs -DincludeScope=runtime \
 && rm -rf /root/.m2 \
 && apt-get purge -y maven && apt-get autoremove -y \
 && useradd --uid 10002 --create-home kafka && mkdir -p /var/lib/kafka/data && chown -R kafka /var/lib/kafka
COPY deploy/container/kafka/ /opt/kafka/
USER kafka
EXPOSE 9092
HEALTHCHECK --interval=5s --timeout=5s --start-period=30s --retries=20 \
  CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/9092'
CMD ["/opt/kafka/start.sh"]
