#!/usr/bin/env bash
# Debian packages mindzoo needs on the host, and a Go toolchain new enough for the
# tools scripts/build-tools.sh builds. Idempotent: installs only what is missing.
# Needs root. With --e2e also what `make test-e2e` needs (MariaDB for the KFP backend).
#
# Packages: a container engine (podman + runc, used when no Docker daemon answers),
# busybox-static (a tiny local image for engine smoke tests), debootstrap (local base
# images: no registry is reachable), python3-venv; for the cluster tests etcd (the API
# server's store) and, for the real node, containerd (its CRI plugin runs the pods),
# the CNI plugins, iptables (kube-proxy) and gcc + libc6-dev (the static pause program); gcc and
# libjpeg62-turbo-dev build mindzoo's JPEG crop decoder.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(podman runc uidmap slirp4netns fuse-overlayfs busybox-static debootstrap python3-venv make
          gcc libc6-dev libjpeg62-turbo-dev             # mindzoo's JPEG crop decoder (setup.py), built into .venv
          etcd-server                                   # the cluster test harness's API server store
          containerd containernetworking-plugins iptables iproute2 util-linux gcc libc6-dev  # the real node
          chromium chromium-driver                      # headless browser + WebDriver: the MLflow UI test
          ca-certificates)                              # TLS to the Go module proxy (Go toolchain download)
if [ "${1:-}" = "--e2e" ]; then  # `make test-e2e` only: the Kubeflow Pipelines backend's database
  packages+=(mariadb-server)     # (its harness runs mariadbd itself, with its own data folder)
fi
GO_VERSION=1.26.8  # installed when Go is missing or older than the newest `go` line in tools/*/go.mod
want_go=""
go_needed=$(sed -n 's/^go \([0-9.]*\).*/\1/p' tools/*/go.mod | sort -V | tail -1)  # the newest any tool needs
go_have=$(go env GOVERSION 2>/dev/null | sed 's/^go//' || true)
if [ -z "$go_have" ] || [ "$(printf '%s\n%s\n' "$go_needed" "$go_have" | sort -V | head -1)" != "$go_needed" ]; then
  want_go=1
  packages+=(golang-go)  # Debian's Go (1.19 on bookworm): only the bootstrap for the toolchain below
fi

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
# Debian's containerd package starts its daemon where systemd runs; the tests run
# their own containerd with their own settings and never use the system one.

if [ -n "$want_go" ]; then
  # The Go toolchain is published as a module (golang.org/toolchain) on the Go module
  # proxy: Debian's older Go downloads it like any module (checksum-verified against
  # the checksum database), and /usr/local/bin/go points at it. This is what
  # GOTOOLCHAIN does in Go >= 1.21, which bookworm's Go predates.
  toolchain="golang.org/toolchain@v0.0.1-go${GO_VERSION}.linux-$(dpkg --print-architecture)"
  echo "==> installing Go $GO_VERSION ($toolchain) through the Go module proxy (found: ${go_have:-none}; the tools need >= $go_needed)"
  modcache=$(/usr/lib/go/bin/go env GOMODCACHE 2>/dev/null || echo "$HOME/go/pkg/mod")
  dir=$(cd /tmp && GOFLAGS=-mod=mod GO111MODULE=on GOTOOLCHAIN=local /usr/lib/go/bin/go mod download -json "$toolchain" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -f "$dir/bin/go" ] || { echo "error: the Go toolchain module $toolchain did not download (module cache $modcache)" >&2; exit 1; }
  # Module zips keep no file modes: copy it out of the read-only module cache and make
  # its programs executable, as Go's own toolchain switch does.
  goroot=/usr/local/lib/go-$GO_VERSION
  rm -rf "$goroot.new" && cp -r "$dir" "$goroot.new" && chmod -R u+w "$goroot.new"
  chmod +x "$goroot.new"/bin/* "$goroot.new"/pkg/tool/*/*
  rm -rf "$goroot" && mv "$goroot.new" "$goroot"
  ln -sf "$goroot/bin/go" /usr/local/bin/go
  ln -sf "$goroot/bin/gofmt" /usr/local/bin/gofmt
  hash -r
  echo "==> $(go version)"
fi
command -v python3 >/dev/null || { echo "error: python3 (3.10-3.12) is needed" >&2; exit 1; }
