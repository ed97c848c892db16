#!/usr/bin/env bash
# Make a container engine and the local Debian base image ready: install docker.io and
# docker-compose (Debian) if missing, start dockerd if it is not running, and build
# local/debian:bookworm with debootstrap once (no image registry is needed). Idempotent.
# Prints the base image's id last. Root only (apt-get, dockerd).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
BASE=${FRAMEWATCH_BASE_IMAGE:-local/debian:bookworm}
MIRROR=${FRAMEWATCH_DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
# the newer client some machines carry first on PATH has no buildx: use Debian's
DOCKER=/usr/bin/docker

need=()
[ -x /usr/sbin/dockerd ] || need+=(docker.io)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  echo "engine: installing ${need[*]}" >&2
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! $DOCKER info >/dev/null 2>&1; then
  echo "engine: starting dockerd" >&2
  (dockerd >/var/log/framewatch-dockerd.log 2>&1 &)
  for _ in $(seq 60); do $DOCKER info >/dev/null 2>&1 && break; sleep 1; done
  $DOCKER info >/dev/null 2>&1 || { tail -20 /var/log/framewatch-dockerd.log >&2; exit 1; }
fi

if ! $DOCKER image inspect "$BASE" >/dev/null 2>&1; then
  echo "engine: building $BASE with debootstrap from $MIRROR (once, ~1 min)" >&2
  dir=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$dir" "$MIRROR" >/dev/null
  tar -C "$dir" -c . | $DOCKER import -c 'CMD ["/bin/bash"]' - "$BASE" >/dev/null
  rm -rf "$dir"
fi
$DOCKER image inspect -f '{{.Id}}' "$BASE"
