#!/usr/bin/env bash
# Run the test suite in both environments (they cannot merge: protobuf pins), then
# print one combined summary line. Extra arguments go to both pytest runs.
#
# The two runs go side by side: the runtime environment's tests mostly compute
# (MindSpore/torch training), the control environment's mostly wait (servers, a
# cluster, containers), so together they take little more than the longer one.
# The control run's output follows the runtime run's, each whole.
set -uo pipefail
cd "$(dirname "$0")/.."
export GLOG_v=3 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 ONEDNN_MAX_CPU_ISA=AVX2

# The suite writes several GB (the real node's image store, datasets, checkpoints) on
# disks that CI machines share with others: say so up front when room is short, so
# that "no space left" failures further down are not a mystery.
CACHE="${MINDZOO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mindzoo}"
mkdir -p "$CACHE"
df -Pk "${TMPDIR:-/tmp}" "$CACHE" . | awk 'NR > 1 && !seen[$6]++ && $4 < 12 * 1024 * 1024 {
  printf "WARNING: only %.1f GB free on %s; the tests need about 12 GB there and may fail for lack of space\n",
    $4 / 1024 / 1024, $6 }'
reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT

run() {  # run ENV VENV: pytest in one environment, its report in $reports
  "$2/bin/python" -m pytest -p no:cacheprovider --durations=15 --junitxml="$reports/$1.xml" "${@:3}" tests
}

echo "==> tests in the control environment (.venv-control), in the background: its output follows"
start=$SECONDS
run control .venv-control "$@" >"$reports/control.log" 2>&1 &
control=$!
echo "==> tests in the runtime environment (.venv)"
run runtime .venv "$@"
runtime_status=$?
echo "==> runtime environment done in $((SECONDS - start)) s; waiting for the control environment"
wait "$control"
control_status=$?
echo "==> tests in the control environment (.venv-control), done after $((SECONDS - start)) s"
cat "$reports/control.log"

python3 scripts/junit-summary.py "mindzoo" "$reports"
[ "$runtime_status" = 0 ] && [ "$control_status" = 0 ]
