# Sourced by scripts/build-tools.sh and scripts/build-kfp.sh: run independent builds side by
# side, at most $JOBS at a time (each Go build also compiles in parallel, but links and module
# downloads are serial, so two at once keep a 2-core machine busy). Each build's output goes to
# a log that is shown when it fails.
#
#   spawn NAME COMMAND...   start one build in the background
#   finish                  wait for every build; print how each went; non-zero when any failed
JOBS=${BUILD_JOBS:-2}
build_logs=$(mktemp -d)
trap 'rm -rf "$build_logs"' EXIT
running=()
spawn() {
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  echo "==> building $1 in the background"
  ( start=$SECONDS; "${@:2}"; rc=$?; echo "==> $1 built in $((SECONDS - start)) s"; echo $rc >"$build_logs/$1.rc" ) \
    >"$build_logs/$1.log" 2>&1 &
  running+=("$1")
}
finish() {
  local failed=0 name
  wait
  for name in "${running[@]}"; do
    if [ "$(cat "$build_logs/$name.rc" 2>/dev/null)" = 0 ]; then
      grep "^==> " "$build_logs/$name.log"
    else
      echo "error: building $name failed:" >&2; tail -30 "$build_logs/$name.log" >&2; failed=1
    fi
  done
  return $failed
}
