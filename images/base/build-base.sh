#!/usr/bin/env bash
# build-base.sh [IMAGE]: make a Debian bookworm base image locally with debootstrap,
# for machines that cannot pull from a registry. The result stands in for
# python:3.11-slim-bookworm (same Debian, same Python 3.11). Needs root, debootstrap
# and podman (or docker). Skips the build when the image already exists.
# libgomp1: MindSpore's CPU kernels link against OpenMP.
set -euo pipefail
image=${1:-localhost/mindzoo-base:bookworm}
engine=${ENGINE:-podman}
if $engine image exists "$image" 2>/dev/null || $engine image inspect "$image" >/dev/null 2>&1; then
  echo "==> base image $image: present"
  exit 0
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "==> debootstrap bookworm into $root (about a minute)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,libgomp1 bookworm "$root" >/dev/null
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
# Without PATH, containers started through the Docker API cannot find python3 or sh.
tar -C "$root" -c . | $engine import \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV LANG=C.UTF-8" - "$image" >/dev/null
echo "==> base image $image: built"
