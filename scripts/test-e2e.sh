#!/usr/bin/env bash
# The end-to-end tests of the Kubeflow Pipelines backend (issue #21; marker kfpbackend), kept out
# of `make test`, whose time budget they would not fit: mindzoo's ML Metadata front end in the ML
# Metadata environment (.venv-mlmd), then what `make kfp-backend` / `make kfp-images` built,
# against the cluster harness, in the control environment. Extra arguments go to both pytest runs.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
run() {  # run NAME VENV PATHS...: the kfpbackend tests of one environment
  local start=$SECONDS
  echo "==> KFP backend tests in $2"
  "$2/bin/python" -m pytest -p no:cacheprovider --durations=10 --junitxml="$reports/$1.xml" -m kfpbackend \
    "${@:3}"
  local status=$?
  echo "==> $2 done in $((SECONDS - start)) s"
  return $status
}
run mlmd .venv-mlmd "$@" tests/kfpbackend; mlmd=$?
run control .venv-control "$@" tests/cluster; control=$?
python3 scripts/junit-summary.py "mindzoo e2e" "$reports"
[ "$mlmd" = 0 ] && [ "$control" = 0 ]
