#!/usr/bin/env bash
# Build the servers and tools mindzoo runs for real from their Go source, into
# the cache folder outside the repository (never committed). A tool is rebuilt
# only when its pinned version changes; the Go module and build caches make a
# rebuild on a used machine fast, and a fresh machine still builds everything.
set -euo pipefail

CACHE="${MINDZOO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mindzoo}"
BIN="$CACHE/bin"
mkdir -p "$BIN"

# name  module@version  (MinIO publishes no semver tags: a pinned pseudo-version of its last commit)
TOOLS=(
  "minio github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"
  # The cluster test harness (tests/cluster): kwok simulates nodes and pod phases,
  # helm installs charts/mindzoo. Both build with Go >= 1.26.
  "kwok sigs.k8s.io/kwok/cmd/kwok@v0.8.0"
  "helm helm.sh/helm/v4/cmd/helm@v4.3.1"
)

for entry in "${TOOLS[@]}"; do
  read -r name module <<<"$entry"
  stamp="$BIN/.$name.version"
  if [ -x "$BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$module" ]; then
    echo "==> $name: cached ($module)"
    continue
  fi
  echo "==> building $name from source ($module); takes a few minutes on a fresh machine"
  start=$SECONDS
  GOBIN="$BIN" GOFLAGS="${GOFLAGS:-} -trimpath" go install -ldflags="-s -w" "$module"
  echo "$module" >"$stamp"
  echo "==> $name built in $((SECONDS - start)) s"
done

# Kubernetes' own control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler) for the cluster test harness: k8s.io/kubernetes cannot be
# `go install`ed (its go.mod replaces the k8s.io/* staging modules with local
# folders), so tools/hyperkube is a small wrapper module that requires it and
# replaces each staging module with its published version. One multi-call
# binary: one compile of the shared packages and one link instead of three.
wrapper="$(cd "$(dirname "$0")/.." && pwd)/tools/hyperkube"
kube_version=$(awk '{for (i = 1; i < NF; i++) if ($i == "k8s.io/kubernetes" && $(i + 1) ~ /^v1\./) print $(i + 1)}' \
  "$wrapper/go.mod" | head -1)
[ -n "$kube_version" ] || { echo "error: no k8s.io/kubernetes requirement in $wrapper/go.mod" >&2; exit 1; }
kube_minor=$(echo "$kube_version" | cut -d. -f2)
# The version the API server reports (Helm checks charts' kubeVersion against it);
# `go build` alone would stamp v0.0.0-master.
pkg=k8s.io/component-base/version
kube_ldflags="-s -w -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor -X $pkg.gitTreeState=clean"
stamp="$BIN/.hyperkube.version"
want="$kube_version-$(cat "$wrapper/go.mod" "$wrapper/go.sum" "$wrapper/main.go" <(echo "$kube_ldflags") | sha256sum | cut -c1-16)"
if [ -x "$BIN/hyperkube" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "==> hyperkube: cached (Kubernetes $kube_version)"
else
  echo "==> building hyperkube (kube-apiserver, kube-controller-manager, kube-scheduler $kube_version) from source; 5-10 min on a fresh 2-core machine"
  start=$SECONDS
  (cd "$wrapper" && GOFLAGS="${GOFLAGS:-} -trimpath -buildvcs=false" go build -ldflags="$kube_ldflags" -o "$BIN/hyperkube" .)
  echo "$want" >"$stamp"
  echo "==> hyperkube built in $((SECONDS - start)) s"
fi
