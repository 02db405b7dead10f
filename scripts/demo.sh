#!/usr/bin/env bash
# The main job on the embedded default: bring up the local stack, write the
# bundled digits data in a real dataset layout, and run every pipeline step
# that is built so far on it. (Once the pipeline exists this runs the whole
# pipeline through kfp.local.)
set -euo pipefail
cd "$(dirname "$0")/.."
export GLOG_v=3 PYTHONUNBUFFERED=1
run=.venv/bin/mindzoo ctl=.venv-control/bin/mindzoo
work="${MINDZOO_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/mindzoo}/demo"

echo "==> starting the local stack"
$ctl stack up
echo "==> writing the bundled digits as CIFAR-10 binaries to $work/digits-cifar10"
$run datasets make-digits --format cifar10 --force "$work/digits-cifar10"

if ! $run preprocess --help 2>&1 | grep -q "not built yet"; then
  echo "==> preprocess: CIFAR-10 binaries → MindRecord in MinIO"
  $run preprocess --source "$work/digits-cifar10"
else
  echo "==> uploading the raw dataset to MinIO (the preprocess step is not built yet)"
  $run storage cp "$work/digits-cifar10" s3://mindzoo/raw/digits-cifar10
fi

$ctl stack status
echo "MLflow UI: $($ctl stack status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["mlflow_uri"])')"
