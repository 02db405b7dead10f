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
  # Validators of the rendered chart that nobody here wrote (tests/charts/test_chart_validators.py).
  "kubeconform github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0"
  "kube-score github.com/zegl/kube-score/cmd/kube-score@v1.20.0"
  # Kubeflow Trainer's controller (TrainJob, on JobSet; its webhooks): the cluster tests run it
  # as a host process (tests/cluster/trainer.py). JobSet is a wrapper below.
  "trainer-controller-manager github.com/kubeflow/trainer/v2/cmd/trainer-controller-manager@v2.3.0"
)

# The builds are independent: they run side by side (scripts/parallel-builds.sh).
# shellcheck source=scripts/parallel-builds.sh
. "$(dirname "$0")/parallel-builds.sh"

go_install() {  # go_install NAME MODULE@VERSION
  local name=$1 module=$2
  # CGO off: static binaries, and MinIO's compiled packages are the ones images/minio's build
  # stage (CGO_ENABLED=0) finds in the shared Go build cache.
  CGO_ENABLED=0 GOBIN="$BIN" GOFLAGS="${GOFLAGS:-} -trimpath" go install -ldflags="-s -w" "$module"
  echo "$module" >"$BIN/.$name.version"
}
# Wrapper modules under tools/: programs whose upstream module cannot be
# `go install`ed as is, or that we build with fewer parts.
#  - hyperkube: the control plane (kube-apiserver, kube-controller-manager,
#    kube-scheduler) and the real node's kubelet and kube-proxy. k8s.io/kubernetes
#    replaces its k8s.io/* staging modules with local folders, so the wrapper
#    requires it and replaces each with its published version. One multi-call
#    binary: one compile of the shared packages and one link instead of five.
#  - coredns: cluster DNS of the real node, with only the plugins it uses.
#  - jobset: the JobSet controller; its main package is its module root, which
#    `go install` cannot fetch here (see tools/jobset/go.mod). No main.go: the
#    wrapper requires it as a tool and builds that package.
tools_dir="$(cd "$(dirname "$0")/.." && pwd)/tools"
build_wrapper() {  # build_wrapper NAME VERSION LDFLAGS WHAT [PACKAGE (default: the wrapper's own main.go)]
  local name=$1 version=$2 ldflags=$3 what=$4 package=${5:-.} dir="$tools_dir/$1" want
  local sources=("$dir/go.mod" "$dir/go.sum")
  [ ! -f "$dir/main.go" ] || sources+=("$dir/main.go")
  want="$version-$(cat "${sources[@]}" <(echo "$ldflags") | sha256sum | cut -c1-16)"
  if [ -x "$BIN/$name" ] && [ "$(cat "$BIN/.$name.version" 2>/dev/null)" = "$want" ]; then
    echo "==> $name: cached ($version)"
    return
  fi
  echo "==> $name: $what $version, from source (minutes on a fresh 2-core machine)"
  spawn "$name" go_build "$name" "$dir" "$ldflags" "$want" "$package"
}
go_build() {  # go_build NAME DIR LDFLAGS STAMP PACKAGE
  (cd "$2" && GOFLAGS="${GOFLAGS:-} -trimpath -buildvcs=false" go build -ldflags="$3" -o "$BIN/$1.new" "$5" \
    && mv "$BIN/$1.new" "$BIN/$1") && echo "$4" >"$BIN/.$1.version"
}
required_version() {  # the version of MODULE that tools/NAME/go.mod requires
  awk -v m="$2" '{for (i = 1; i < NF; i++) if ($i == m && $(i + 1) ~ /^v[0-9]/) print $(i + 1)}' \
    "$tools_dir/$1/go.mod" | head -1
}

kube_version=$(required_version hyperkube k8s.io/kubernetes)
[ -n "$kube_version" ] || { echo "error: no k8s.io/kubernetes requirement in $tools_dir/hyperkube/go.mod" >&2; exit 1; }
kube_minor=$(echo "$kube_version" | cut -d. -f2)
# The version the API server and kubelet report (Helm checks charts' kubeVersion
# against it); `go build` alone would stamp v0.0.0-master.
pkg=k8s.io/component-base/version
build_wrapper hyperkube "$kube_version" \
  "-s -w -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$kube_minor -X $pkg.gitTreeState=clean" \
  "kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy"
build_wrapper coredns "$(required_version coredns github.com/coredns/coredns)" "-s -w" "CoreDNS"
build_wrapper jobset "$(required_version jobset sigs.k8s.io/jobset)" "-s -w" "the JobSet controller" sigs.k8s.io/jobset

for entry in "${TOOLS[@]}"; do
  read -r name module <<<"$entry"
  if [ -x "$BIN/$name" ] && [ "$(cat "$BIN/.$name.version" 2>/dev/null)" = "$module" ]; then
    echo "==> $name: cached ($module)"
  else
    spawn "$name" go_install "$name" "$module"
  fi
done

# The pod sandbox ("pause") program of the real node, from the same Kubernetes
# source: no registry serves its image here. tests/cluster/nodeimages.py wraps it
# into an image for containerd.
pause_src="$(go env GOMODCACHE)/k8s.io/kubernetes@$kube_version/build/pause/linux/pause.c"
if [ -x "$BIN/pause" ] && [ "$(cat "$BIN/.pause.version" 2>/dev/null)" = "$kube_version" ]; then
  echo "==> pause: cached ($kube_version)"
else
  [ -f "$pause_src" ] || (cd "$tools_dir/hyperkube" && go mod download k8s.io/kubernetes)
  echo "==> building pause from $pause_src"
  gcc -Os -static -Wall -Werror -DVERSION="$kube_version" -o "$BIN/pause" "$pause_src"
  echo "$kube_version" >"$BIN/.pause.version"
fi

finish
