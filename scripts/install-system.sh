#!/usr/bin/env bash
# Debian packages mindzoo needs on the host: a container engine (podman + runc,
# used when no Docker daemon answers), busybox-static (a tiny local image for
# engine smoke tests), debootstrap (local base images: no registry is reachable),
# python3-venv. Idempotent: installs only what is missing. Needs root.
set -euo pipefail

packages=(podman runc uidmap slirp4netns fuse-overlayfs busybox-static debootstrap python3-venv make
          etcd-server   # etcd: the cluster test harness's API server store (tests/cluster)
          chromium chromium-driver)  # headless browser + WebDriver: the MLflow UI test (tests/browser)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "==> installing Debian packages: ${missing[*]}"
  [ "$(id -u)" = 0 ] || { echo "error: installing ${missing[*]} needs root (or sudo)" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "==> Debian packages: all present"
fi
command -v go >/dev/null || { echo "error: the Go toolchain is needed to build MinIO from source (go >= 1.24)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "error: python3 (3.10-3.12) is needed" >&2; exit 1; }
