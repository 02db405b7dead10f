#!/usr/bin/env bash
# Build the CPU runtime image with the local container engine (podman here, Docker
# where present). No registry is reachable on build machines, so the base image is
# made locally (images/base/build-base.sh) and wheels come from a wheelhouse in the
# cache folder, mounted into the build. The GPU and Ascend images build the same way
# on machines that can pull their bases (see images/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${MINDZOO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mindzoo}"
image=$(python3 -c 'import components.images as i; print(i.CPU)')
base=${BASE_IMAGE:-localhost/mindzoo-base:bookworm}
engine=podman; command -v podman >/dev/null || engine=docker
export CONTAINERS_CONF="${CONTAINERS_CONF:-$(.venv-control/bin/python -c 'from mindzoo.stack.engine import containers_conf; print(containers_conf())')}"

[ "$base" = localhost/mindzoo-base:bookworm ] && ENGINE=$engine images/base/build-base.sh "$base"

wheels="$CACHE/wheels/runtime"
stamp="$wheels/.lock-sha"
lock_sha=$(sha256sum requirements/runtime.txt | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sha" ]; then
  echo "==> downloading the runtime wheelhouse into $wheels (several GB, once per lock change)"
  mkdir -p "$wheels"
  .venv/bin/python -m pip download -q --only-binary=:all: -d "$wheels" -r requirements/runtime.txt
  # The build backend, so mindzoo itself installs offline too.
  .venv/bin/python -m pip download -q --only-binary=:all: -d "$wheels" "setuptools>=68" wheel
  echo "$lock_sha" >"$stamp"
fi

sha=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "==> building $image from $base (git $sha)"
$engine build -q -f images/cpu/Dockerfile -t "$image" \
  --build-arg BASE_IMAGE="$base" --build-arg GIT_SHA="$sha" \
  -v "$wheels:/wheels:ro" .
# Superseded builds leave multi-GB dangling images behind; the layer cache stays. Housekeeping only:
# a container still running from an older build keeps its image, and the prune refusing that must not
# fail the build that just succeeded.
$engine image prune -f >/dev/null 2>&1 || echo "==> note: some superseded images are still in use; not pruned" >&2
# The image's ID exists only once it is built, so it cannot be written into the image: the steps learn it
# from whoever starts them ($MINDZOO_IMAGE_DIGEST; `mindzoo pipeline run-local` reads this same ID from the
# engine). For a cluster, push and compile with the registry's digest pinned (images/README.md).
id=$($engine image inspect "$image" --format '{{.Id}}'); id="sha256:${id#sha256:}"
echo "==> built $image ($($engine image inspect "$image" --format '{{.Size}}' | numfmt --to=iec), ID $id)"
