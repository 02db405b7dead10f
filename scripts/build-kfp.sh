#!/usr/bin/env bash
# build-kfp.sh [source|binaries|images|all]: build the Kubeflow Pipelines backend that mindzoo's e2e
# tests run (issue #21) into the cache folder, never into the repository:
#
#   source    only unpack the source and download its Go modules (network, no compiling)
#   binaries  KFP 2.17.0's API server, v2 driver, v2 launcher and persistence agent, from the
#             vendored source (../shared/vendor/) or a KFP source tree named by KFP_SRC; the
#             Argo Workflows controller and executor (argoexec) that KFP's go.mod pins, and
#             kustomize (renders KFP's manifests), from the Go module proxy
#   images    the kfp-driver, kfp-launcher and argoexec images (podman, on the local base),
#             whose names it writes to <cache>/kfp-2.17.0/images.json for the test harness
#
# The Go module proxy refuses every github.com/kubeflow/pipelines module, so KFP builds from a
# source tree. With internet access, a clone of the tag works the same as the vendored archive:
#   git clone --depth 1 --branch 2.17.0 https://github.com/kubeflow/pipelines && KFP_SRC=$PWD/pipelines make kfp-backend
# Each binary is rebuilt only when its source, the Go version or its flags change (a stamp).
set -euo pipefail
# Paths given relative to where make ran, before moving to the repository root.
if [ -n "${KFP_SRC:-}" ]; then
  [ -d "$KFP_SRC" ] || { echo "error: KFP_SRC=$KFP_SRC: no such folder" >&2; exit 1; }
  KFP_SRC=$(cd "$KFP_SRC" && pwd)
fi
if [ -n "${KFP_TARBALL:-}" ]; then KFP_TARBALL=$(realpath "$KFP_TARBALL"); fi
cd "$(dirname "$0")/.."
ROOT=$PWD
KFP_VERSION=2.17.0
CACHE="${MINDZOO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mindzoo}"
HOME_DIR="$CACHE/kfp-$KFP_VERSION"
SRC="$HOME_DIR/src" BIN="$HOME_DIR/bin"
TARBALL=${KFP_TARBALL:-$(dirname "$ROOT")/shared/vendor/kubeflow-pipelines-$KFP_VERSION-backend-src.tar.gz}
# What a KFP checkout must hold to build the backend (the vendored archive holds exactly these).
SOURCE_PATHS=(go.mod go.sum LICENSE api kubernetes_platform backend/src backend/api third_party/ml-metadata
              manifests/kustomize/base manifests/kustomize/third-party/argo)
# The one change that makes every dependency resolve: go.mod requires this module by a version
# the proxy refuses; the folder is in the tree (measured in ../shared/vendor/README.md).
MLMD_MODULE=github.com/kubeflow/pipelines/third_party/ml-metadata
ARGO_MODULE=github.com/argoproj/argo-workflows/v4
stage=${1:-binaries}
die() { echo "error: $*" >&2; exit 1; }

source_id() {  # a content hash of the source: the archive's, or the tree's named paths
  if [ -n "${KFP_SRC:-}" ]; then
    (cd "$KFP_SRC" && tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -c "${SOURCE_PATHS[@]}") \
      | sha256sum | cut -c1-16
  else
    sha256sum "$TARBALL" | cut -c1-16
  fi
}

prepare_source() {  # unpack the source into $SRC (once per source), replace the MLMD module, fetch modules
  if [ -n "${KFP_SRC:-}" ]; then
    [ -f "$KFP_SRC/go.mod" ] || die "KFP_SRC=$KFP_SRC has no go.mod: point it at a clone of kubeflow/pipelines"
    for path in "${SOURCE_PATHS[@]}"; do
      [ -e "$KFP_SRC/$path" ] || die "KFP_SRC=$KFP_SRC lacks $path: is it a kubeflow/pipelines clone of tag $KFP_VERSION?"
    done
    if [ -f "$KFP_SRC/VERSION" ] && [ "$(cat "$KFP_SRC/VERSION")" != "$KFP_VERSION" ]; then
      die "KFP_SRC=$KFP_SRC is KFP $(cat "$KFP_SRC/VERSION"); this build is for $KFP_VERSION (git checkout $KFP_VERSION)"
    fi
  else
    [ -f "$TARBALL" ] || die "no KFP source: $TARBALL is missing (or set KFP_SRC to a clone of tag $KFP_VERSION)"
  fi
  local id
  id=$(source_id)
  if [ "$(cat "$SRC/.source-id" 2>/dev/null)" = "$id" ]; then
    echo "==> KFP $KFP_VERSION source: cached in $SRC ($id)"
    return
  fi
  echo "==> KFP $KFP_VERSION source: unpacking ${KFP_SRC:-$TARBALL} into $SRC"
  rm -rf "$SRC.new" && mkdir -p "$SRC.new"
  if [ -n "${KFP_SRC:-}" ]; then
    (cd "$KFP_SRC" && tar -c "${SOURCE_PATHS[@]}") | tar -x -C "$SRC.new"
  else
    tar -xzf "$TARBALL" -C "$SRC.new" --strip-components=1
  fi
  grep -qx "module github.com/kubeflow/pipelines" "$SRC.new/go.mod" || die "$SRC.new/go.mod is not KFP's"
  (cd "$SRC.new" && go mod edit -replace "$MLMD_MODULE=./third_party/ml-metadata")
  echo "==> downloading KFP's Go modules (once per source; the module cache keeps them)"
  (cd "$SRC.new" && go mod download) || die "go mod download of KFP $KFP_VERSION's dependencies failed"
  echo "$id" >"$SRC.new/.source-id"
  rm -rf "$SRC" && mv "$SRC.new" "$SRC"
}

stamp_of() {  # stamp_of WHAT FLAGS...: what a built binary's stamp must say to be reused
  echo "$1 $(go env GOVERSION) ${*:2}" | sha256sum | cut -c1-16
}
built() {  # built NAME STAMP: is NAME already built with this stamp?
  [ -x "$BIN/$1" ] && [ "$(cat "$BIN/.$1.stamp" 2>/dev/null)" = "$2" ]
}
timed() {  # timed NAME COMMAND...: run one build step, print its time (the logs keep these lines)
  local start=$SECONDS
  "${@:2}"
  echo "==> $1 built in $((SECONDS - start)) s ($(du -m "$BIN/$1" | cut -f1) MB)"
}

# KFP: the API server first (by far the most packages; the others then find most of theirs in
# the build cache), one after another. The API server and the persistence agent run on the host
# (CGO as upstream: the API server links go-sqlite3); the driver and launcher run in pods, and
# the launcher is copied into every step's image: static, CGO_ENABLED=0 -tags netgo as upstream.
KFP_BUILDS=(
  "apiserver ./backend/src/apiserver 1"
  "persistence_agent ./backend/src/agent/persistence 1"
  "driver ./backend/src/v2/cmd/driver 0"
  "launcher-v2 ./backend/src/v2/cmd/launcher-v2 0"
)
kfp_build() {  # kfp_build NAME PACKAGE CGO STAMP
  local tags=()
  [ "$3" = 0 ] && tags=(-tags netgo)
  (cd "$SRC" && CGO_ENABLED=$3 GOFLAGS="${GOFLAGS:-} -trimpath -buildvcs=false" \
    go build "${tags[@]}" -ldflags="-s -w" -o "$BIN/$1.new" "$2")
  mv "$BIN/$1.new" "$BIN/$1" && echo "$4" >"$BIN/.$1.stamp"
}
kfp_chain() {  # every KFP binary that is not built yet, in order
  local entry name package cgo stamp
  for entry in "${KFP_BUILDS[@]}"; do
    read -r name package cgo <<<"$entry"
    stamp=$(stamp_of "$(cat "$SRC/.source-id") $package cgo=$cgo")
    built "$name" "$stamp" || timed "$name" kfp_build "$name" "$package" "$cgo" "$stamp"
  done
}

# From the Go module proxy, static: Argo's executor (copied into every step's pod and run there)
# and controller, at the version KFP's go.mod requires, version-stamped as Argo's Makefile does;
# and kustomize, which renders KFP's manifests (manifests/kustomize) for the test harness.
KUSTOMIZE_VERSION=v5.8.2  # the newest the proxy serves that Go 1.26 builds (v5.8.3 needs Go 1.27)
proxy_list() {  # ARGO_VERSION: one "NAME PACKAGE@VERSION [-X ...]" line per program, smallest first
  local argo=$ARGO_MODULE stamp="-X $ARGO_MODULE.version=$1 -X $ARGO_MODULE.gitTag=$1 -X $ARGO_MODULE.gitTreeState=clean"
  echo "kustomize sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  echo "argoexec $argo/cmd/argoexec@$1 $stamp"
  echo "workflow-controller $argo/cmd/workflow-controller@$1 $stamp"
}
proxy_build() {  # proxy_build NAME PACKAGE@VERSION STAMP [LDFLAGS...]
  local module=${2%%/cmd/*}
  if [ "$module" = "$ARGO_MODULE" ]; then
    argo_build "$@"
  else
    (cd "$HOME_DIR" && CGO_ENABLED=0 GOBIN="$BIN/.gobin" GOFLAGS="${GOFLAGS:-} -trimpath" \
      go install -ldflags="-s -w ${*:4}" "$2")
    mv "$BIN/.gobin/$1" "$BIN/$1"
  fi
  echo "$3" >"$BIN/.$1.stamp"
}
# Argo's repository holds workflow/executor/osspecific/signal_linux.go as a symbolic link to
# signal_darwin.go, and module zips leave symbolic links out: `go install .../cmd/argoexec@v4.0.5`
# fails on Linux ("undefined: Setpgid"), and -overlay may not add files to the module cache. So
# Argo builds in a copy of the proxy's download with that link made a file again, as in the repository.
argo_build() {  # argo_build NAME PACKAGE@VERSION STAMP [LDFLAGS...]
  local version=${2##*@} dir copy="$HOME_DIR/argo-src"
  dir=$(go mod download -json "$ARGO_MODULE@$version" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  if [ "$(cat "$copy/.version" 2>/dev/null)" != "$version" ]; then
    rm -rf "$copy" "$copy.new" && cp -r "$dir" "$copy.new" && chmod -R u+w "$copy.new"
    cp "$copy.new/workflow/executor/osspecific/signal_darwin.go" "$copy.new/workflow/executor/osspecific/signal_linux.go"
    echo "$version" >"$copy.new/.version" && mv "$copy.new" "$copy"
  fi
  local package=${2%@*}
  (cd "$copy" && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath -buildvcs=false" \
    go build -ldflags="-s -w ${*:4}" -o "$BIN/$1.new" "./${package#"$ARGO_MODULE"/}")
  mv "$BIN/$1.new" "$BIN/$1"
}
proxy_chain() {  # ARGO_VERSION: every program from the proxy that is not built yet, in order
  local name package ldflags stamp
  while read -r name package ldflags; do
    stamp=$(stamp_of "$package $ldflags")
    built "$name" "$stamp" || timed "$name" proxy_build "$name" "$package" "$stamp" $ldflags
  done < <(proxy_list "$1")
}
argo_version() {  # the Argo Workflows version KFP's go.mod requires (KFP 2.17.0: v4.0.5)
  (cd "$SRC" && go mod edit -json) | python3 -c '
import json, sys
print(next(r["Version"] for r in json.load(sys.stdin)["Require"] if r["Path"] == sys.argv[1]))' "$ARGO_MODULE"
}

build_binaries() {
  command -v go >/dev/null || die "go is missing: run \`make system\`"
  mkdir -p "$BIN/.gobin"
  prepare_source
  local argo
  argo=$(argo_version) || die "KFP's go.mod requires no $ARGO_MODULE"
  # shellcheck source=scripts/parallel-builds.sh
  . scripts/parallel-builds.sh
  local todo=0 entry name package cgo ldflags
  for entry in "${KFP_BUILDS[@]}"; do
    read -r name package cgo <<<"$entry"
    built "$name" "$(stamp_of "$(cat "$SRC/.source-id") $package cgo=$cgo")" || todo=1
  done
  if [ $todo = 1 ]; then
    echo "==> KFP $KFP_VERSION: API server, persistence agent, driver, launcher (cold: about 11 minutes on 2 cores)"
    spawn kfp kfp_chain
  else
    echo "==> KFP $KFP_VERSION binaries: cached in $BIN"
  fi
  todo=0
  while read -r name package ldflags; do
    built "$name" "$(stamp_of "$package $ldflags")" || todo=1
  done < <(proxy_list "$argo")
  if [ $todo = 1 ]; then
    echo "==> Argo Workflows $argo (argoexec, workflow-controller), kustomize $KUSTOMIZE_VERSION: from the Go module proxy"
    spawn proxy proxy_chain "$argo"
  else
    echo "==> Argo Workflows $argo, kustomize $KUSTOMIZE_VERSION: cached in $BIN"
  fi
  finish
  rmdir "$BIN/.gobin" 2>/dev/null || true
  echo "$argo" >"$BIN/.argo-version"
  echo "==> KFP backend binaries in $BIN"
}

# Images: one small Dockerfile (images/kfp/Dockerfile) takes the program from a build context
# holding only that binary; names are fixed here and published for the harness in images.json.
build_images() {
  local argo base=localhost/mindzoo-base:bookworm engine=podman
  argo=$(cat "$BIN/.argo-version" 2>/dev/null) || die "the KFP binaries are not built: run \`make kfp-backend\`"
  command -v podman >/dev/null || engine=docker
  if [ "$engine" = podman ]; then
    CONTAINERS_CONF="${CONTAINERS_CONF:-$(.venv-control/bin/python -c \
      'from mindzoo.stack.engine import containers_conf; print(containers_conf())')}"
    export CONTAINERS_CONF
  fi
  ENGINE=$engine images/base/build-base.sh "$base"
  local manifest="{" sep="" entry key program image uid sha
  sha=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  context=$(mktemp -d)  # global: the exit trap still sees it
  # (this trap replaces parallel-builds.sh's, so it removes that one's logs too)
  trap 'rm -rf "$context" "${build_logs:-}"' EXIT
  # key  program  image  uid (upstream's non-root users)
  for entry in "driver driver localhost/kfp-driver:$KFP_VERSION 65532" \
               "launcher launcher-v2 localhost/kfp-launcher:$KFP_VERSION 65532" \
               "argoexec argoexec localhost/argoexec:$argo 8737"; do
    read -r key program image uid <<<"$entry"
    [ -x "$BIN/$program" ] || die "$BIN/$program is missing: run \`make kfp-backend\`"
    rm -f "$context"/* && ln "$BIN/$program" "$context/$program" 2>/dev/null || cp "$BIN/$program" "$context/"
    echo "==> building $image"
    $engine build -q -f images/kfp/Dockerfile -t "$image" --build-arg BASE_IMAGE="$base" \
      --build-arg PROGRAM="$program" --build-arg USER_ID="$uid" --build-arg VERSION="${image##*:}" \
      --build-arg GIT_SHA="$sha" "$context" >/dev/null
    echo "==> built $image ($($engine image inspect "$image" --format '{{.Size}}' | numfmt --to=iec))"
    manifest+="$sep\"$key\": \"$image\""; sep=", "
  done
  echo "$manifest}" >"$HOME_DIR/images.json.new" && mv "$HOME_DIR/images.json.new" "$HOME_DIR/images.json"
  echo "==> image names in $HOME_DIR/images.json"
}

case $stage in
  source) prepare_source ;;
  binaries) build_binaries ;;
  images) build_images ;;
  all) build_binaries && build_images ;;
  *) die "usage: scripts/build-kfp.sh [source|binaries|images|all]" ;;
esac
