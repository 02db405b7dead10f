#!/usr/bin/env bash
# The main job (`make demo`, after `make setup images`): start the local stack and run the
# whole Kubeflow pipeline — preprocess → train → evaluate → export → infer310 — compiled by the
# real KFP compiler, through kfp.local's DockerRunner in the CPU image on the local container
# engine, on the bundled digits data. It prints the MLflow URL and, as its last line, the final
# inference acc.log line. Extra arguments go to `mindzoo pipeline run-local`.
set -euo pipefail
cd "$(dirname "$0")/.."
export GLOG_v=3 PYTHONUNBUFFERED=1
ctl=.venv-control/bin/mindzoo

echo "==> starting the local stack"
$ctl stack up
echo "==> running the train pipeline with kfp.local on the bundled digits (GoogLeNet, CIFAR-10 recipe at 16 px; a few minutes)"
exec $ctl pipeline run-local "$@"
