# Prometheus from Debian's prometheus package on the local Debian base (deploy/compose.local.yaml);
# the config and rules are mounted from deploy/prometheus/ as in deploy/compose.yaml.
ARG BASE=local/debian:bookworm
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* && mkdir -p /prometheus && chown prometheus /prometheus
USER prometheus
EXPOSE 9090
HEALTHCHECK --interval=5s --timeout=3s --retries=12 \
  CMD bash -c 'exec 3<>/dev/tcp/127.0.0.1/9090'
ENTRYPOINT ["/usr/bin/prometheus", "--storage.tsdb.path=/prometheus", "--web.enable-lifecycle"]
CMD ["--config.file=/etc/prometheus/prometheus.yml"]
