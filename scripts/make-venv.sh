#!/usr/bin/env bash
# make-venv.sh DIR LOCKFILE: create a virtual environment from a pinned lock file
# and install mindzoo into it (editable). Re-running only installs what changed.
#
# uv (pinned, bootstrapped into the cache folder) installs by hard-linking files
# from its cache: the runtime set is ~7 GB unpacked (MindSpore + torch with its
# CUDA libraries), and every further checkout's environment then costs seconds and
# almost no disk, where pip unpacked all of it again (minutes, and CI machines
# whose disk is shared ran out of it). The lock files stay pip-compatible.
set -euo pipefail
dir=$1 lock=$2
python=${PYTHON:-python3}
UV_VERSION=0.13.8
CACHE="${MINDZOO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mindzoo}"
uv="$CACHE/uv-$UV_VERSION/bin/uv"
bootstrap_uv() {
  [ -x "$uv" ] && return 0  # another make job finished it while this one waited for the lock
  echo "==> bootstrapping uv $UV_VERSION into $CACHE"
  rm -rf "$CACHE/uv-$UV_VERSION.new"
  "$python" -m venv "$CACHE/uv-$UV_VERSION.new"
  "$CACHE/uv-$UV_VERSION.new/bin/python" -m pip install --disable-pip-version-check -q "uv==$UV_VERSION"
  rm -rf "$CACHE/uv-$UV_VERSION" && mv "$CACHE/uv-$UV_VERSION.new" "$CACHE/uv-$UV_VERSION"
  # The venv's scripts name their own folder: re-point them after the move.
  sed -i "1s|$CACHE/uv-$UV_VERSION.new|$CACHE/uv-$UV_VERSION|" "$CACHE/uv-$UV_VERSION/bin/"*
}
if [ ! -x "$uv" ]; then
  # `make -j` creates both environments at once on a cold machine: one bootstraps, the other waits
  # (both writing the same .new folder broke the first cold run).
  mkdir -p "$CACHE"
  exec 9>"$CACHE/uv-$UV_VERSION.lock"
  flock 9
  bootstrap_uv
  flock -u 9
fi
if [ ! -x "$dir/bin/python" ]; then
  echo "==> creating $dir"
  # --seed: pip stays in the environment (build-images.sh downloads the image's wheelhouse with it).
  "$uv" venv --quiet --seed --python "$python" "$dir"
fi
echo "==> installing $lock into $dir (cold: the runtime set downloads several GB, MindSpore + torch)"
"$uv" pip install --python "$dir/bin/python" -r "$lock"
"$uv" pip install --python "$dir/bin/python" --quiet --no-deps -e .
"$uv" pip check --python "$dir/bin/python" >/dev/null 2>&1 || { "$uv" pip check --python "$dir/bin/python"; exit 1; }
