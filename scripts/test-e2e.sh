#!/usr/bin/env bash
# The end-to-end tests of the Kubeflow Pipelines backend (issue #21; marker kfpbackend), kept out
# of `make test`, whose time budget they would not fit. Today: mindzoo's ML Metadata front end,
# in the ML Metadata environment (.venv-mlmd). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
echo "==> KFP backend tests in the ML Metadata environment (.venv-mlmd)"
.venv-mlmd/bin/python -m pytest -p no:cacheprovider --durations=10 -m kfpbackend "$@" tests/kfpbackend
