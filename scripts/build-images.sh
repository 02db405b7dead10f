#!/usr/bin/env bash
# build-images.sh [cpu] [gpu] [ascend]: build runtime images with the local container engine (podman
# here, Docker where present); the CPU image alone by default (`make images`), the accelerator images
# with `make images-accel`. No registry is reachable on build machines, so the base image is made
# locally (images/base/build-base.sh) and wheels come from wheelhouses in the cache folder, mounted
# into the build: the runtime lock at /wheels, the GPU image's CUDA 11 wheels at /wheels-cuda11.
# Nothing here needs an accelerator: the GPU image carries its CUDA userland, the Ascend image expects
# the node's driver and CANN (images/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${MINDZOO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mindzoo}"
runtimes=("${@:-cpu}")
for runtime in "${runtimes[@]}"; do
  case $runtime in cpu|gpu|ascend) ;; *) echo "error: unknown image '$runtime': build cpu, gpu or ascend" >&2; exit 2;; esac
done
base=${BASE_IMAGE:-localhost/mindzoo-base:bookworm}
engine=podman; command -v podman >/dev/null || engine=docker
export CONTAINERS_CONF="${CONTAINERS_CONF:-$(.venv-control/bin/python -c 'from mindzoo.stack.engine import containers_conf; print(containers_conf())')}"
# Where the engine keeps images (podman's or Docker's field), for the free-space warning below.
store=$($engine info --format '{{if .Store}}{{.Store.GraphRoot}}{{else}}{{.DockerRootDir}}{{end}}' 2>/dev/null || echo /var/lib)

[ "$base" = localhost/mindzoo-base:bookworm ] && ENGINE=$engine images/base/build-base.sh "$base"

wheelhouse() {  # wheelhouse NAME LOCK [pip download flags...]: download LOCK's wheels once per change of LOCK
  local name=$1 wheels="$CACHE/wheels/$1" lock=$2; shift 2
  local stamp="$wheels/.lock-sha" lock_sha
  lock_sha=$(sha256sum "$lock" | cut -c1-16)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sha" ]; then
    echo "==> downloading $lock into $wheels (GBs, once per change of $lock)"
    mkdir -p "$wheels"
    .venv/bin/python -m pip download -q --only-binary=:all: -d "$wheels" "$@" -r "$lock"
    # The build backend, so mindzoo itself installs offline too.
    [ "$name" = runtime ] && .venv/bin/python -m pip download -q --only-binary=:all: -d "$wheels" "setuptools>=68" wheel
    echo "$lock_sha" >"$stamp"
  fi
}

wheelhouse runtime requirements/runtime.txt
mounts=(-v "$CACHE/wheels/runtime:/wheels:ro")
sha=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

for runtime in "${runtimes[@]}"; do
  image=$(python3 -c "import components.images as i; print(i.BY_DEVICE['$runtime'])")
  extra=()
  case $runtime in
    gpu)
      wheelhouse gpu-cuda11 requirements/gpu-cuda11.txt --no-deps
      extra=(-v "$CACHE/wheels/gpu-cuda11:/wheels-cuda11:ro");;
    ascend)  # MindSpore Lite is not on PyPI: without its wheel in the runtime wheelhouse, a training-only image
      extra=(--build-arg "MINDSPORE_LITE=${MINDSPORE_LITE:-skip}");;
  esac
  # A new environment layer is on disk about three times while it is committed (the build container's copy,
  # the tar the engine writes, the committed layer): the GPU build failed with 26 GB free, passed with 40.
  need=$(case $runtime in gpu) echo 35;; cpu) echo 20;; ascend) echo 6;; esac)
  free=$(df --output=avail -BG "$store" 2>/dev/null | tail -1 | tr -dc 0-9)
  if [ -n "$free" ] && [ "$free" -lt "$need" ]; then
    echo "==> warning: ${free} GB free in $store; building $image anew needs about $need GB (a rebuild whose layers are cached needs far less)" >&2
  fi
  echo "==> building $image from $base (git $sha)"
  start=$SECONDS
  $engine build -q -f "images/$runtime/Dockerfile" -t "$image" \
    --build-arg BASE_IMAGE="$base" --build-arg GIT_SHA="$sha" "${mounts[@]}" "${extra[@]}" . >/dev/null
  # Superseded builds leave multi-GB dangling images behind; the layer cache stays. Housekeeping only:
  # a container still running from an older build keeps its image, and the prune refusing that must not
  # fail the build that just succeeded.
  $engine image prune -f >/dev/null 2>&1 || echo "==> note: some superseded images are still in use; not pruned" >&2
  # The image's ID exists only once it is built, so it cannot be written into the image: the steps learn it
  # from whoever starts them ($MINDZOO_IMAGE_DIGEST; `mindzoo pipeline run-local` reads this same ID from the
  # engine). For a cluster, push and compile with the registry's digest pinned (images/README.md).
  id=$($engine image inspect "$image" --format '{{.Id}}'); id="sha256:${id#sha256:}"
  size=$($engine image inspect "$image" --format '{{.Size}}' | numfmt --to=iec)
  echo "==> built $image ($size, ID $id) in $((SECONDS - start)) s"
done
