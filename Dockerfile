# framewatch: every service (`framewatch ingest serve`, `framewatch score`,
# `framewatch streams worker`, `framewatch alerts serve`) runs from this one image; the command
# picks the service, and one HEALTHCHECK probes whichever service the container runs.
#   docker build -t framewatch:cpu .
# BASE: any Debian bookworm image. The default is Docker Hub's Python image; without a registry,
# `make compose-test` builds `local/debian:bookworm` with debootstrap and passes it here (the
# image then takes Debian's Python 3.11). See docs/deploy.md.
# GPU image (for the scoring service): `--build-arg GPU=1` adds the CUDA 13 and cuDNN 9 runtime wheels that
# onnxruntime-gpu needs; the host needs only the NVIDIA driver and the NVIDIA Container Toolkit.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}
ARG GPU=0

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PATH=/opt/venv/bin:$PATH \
    # containers: metrics and HTTP APIs must listen beyond loopback
    FRAMEWATCH_METRICS__HOST=0.0.0.0 \
    FRAMEWATCH_LOG_FORMAT=json

# extra CAs (a corporate TLS proxy's), from deploy/container/extra-ca/*.crt; usually none
COPY deploy/container/extra-ca/ /usr/local/share/ca-certificates/
# ffmpeg libraries come inside the PyAV wheel; libgl/glib for opencv-python; a bare Debian base
# also needs Python itself
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libgl1 libglib2.0-0 \
      $(command -v python3 >/dev/null || echo python3 python3-venv) \
 && update-ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/venv \
 && useradd --create-home --uid 10001 framewatch

WORKDIR /app
COPY pyproject.toml README.md requirements-nodeps.txt ./
COPY framewatch ./framewatch
COPY ingest ./ingest
COPY scoring ./scoring
COPY streams ./streams
COPY alerts ./alerts
COPY console ./console
COPY devkit ./devkit
# pdqhash builds from source (a C++ compiler, and Debian's Python headers on a Debian base), then
# the compiler goes again in the same layer. Model packages declare plain onnxruntime, which must
# never sit beside onnxruntime-gpu.
RUN build="g++ $(dpkg -s python3 >/dev/null 2>&1 && echo python3-dev)" \
 && apt-get update && apt-get install -y --no-install-recommends $build \
 && pip install . \
 && pip install --no-deps -r requirements-nodeps.txt \
 && if [ "$GPU" = "1" ]; then pip install "onnxruntime-gpu[cuda,cudnn]"; fi \
 && python -m framewatch.envcheck \
 && apt-get purge -y --auto-remove $build && rm -rf /var/lib/apt/lists/* /app/build

# services keep their working state (the streams worker's Faust data dir, the local evidence
# store) relative to the working directory: one the service user owns
RUN mkdir -p /var/lib/framewatch/evidence && chown -R framewatch /var/lib/framewatch
WORKDIR /var/lib/framewatch
USER framewatch
# metrics: ingest 9101, scoring 9102, streams 9103, alerts 9104, console 9105, check-api 9106;
# HTTP: ingest 8081, check-api 8082, alerts 8084, console 8085
EXPOSE 9101 9102 9103 9104 9105 9106 8081 8082 8084 8085
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=4 \
  CMD ["python", "-m", "framewatch.healthcheck"]
ENTRYPOINT ["framewatch"]
CMD ["--help"]
