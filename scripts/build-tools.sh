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
)

for entry in "${TOOLS[@]}"; do
  read -r name module <<<"$entry"
  stamp="$BIN/.$name.version"
  if [ -x "$BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$module" ]; then
    echo "==> $name: cached ($module)"
    continue
  fi
  echo "==> building $name from source ($module); takes a few minutes on a fresh machine"
  GOBIN="$BIN" GOFLAGS="${GOFLAGS:-} -trimpath" go install "$module"
  echo "$module" >"$stamp"
done
