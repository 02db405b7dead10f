"""The real MLflow tracking server: SQLite backend, artifacts proxied to MinIO."""

from __future__ import annotations

import importlib.util
import sys

from mindzoo.config import StackConfig
from mindzoo.errors import NotInEnvironment
from mindzoo.stack import process, state

NAME = "mlflow"


def start(cfg: StackConfig, s3_url: str) -> process.Service:
    # The server (not the skinny client) lives only in the control environment.
    if importlib.util.find_spec("mlflow.server") is None or importlib.util.find_spec("sqlalchemy") is None:
        raise NotInEnvironment("the MLflow server is in the control environment: run .venv-control/bin/mindzoo stack up")
    creds = state.credentials()
    root = state.root() / "mlflow"
    root.mkdir(parents=True, exist_ok=True)
    log = state.logs_dir() / "mlflow.log"
    url = f"http://{cfg.host}:{cfg.mlflow_port}"
    argv = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        # Proxied artifacts: clients upload through the server and need no S3 credentials.
        "--artifacts-destination", "s3://mlflow/artifacts", "--serve-artifacts",
        "--host", cfg.host, "--port", str(cfg.mlflow_port), "--workers", "1",
    ]
    env = {
        "AWS_ACCESS_KEY_ID": creds["access_key"],
        "AWS_SECRET_ACCESS_KEY": creds["secret_key"],
        "MLFLOW_S3_ENDPOINT_URL": s3_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        # MLflow 3's job runner starts a dozen worker processes; the stack does not use it.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_SERVER_JOB_ENABLE_PERIODIC_TASKS": "false",
    }
    pid = process.spawn(argv, log, env=env)
    return process.Service(NAME, pid, url, f"{url}/health", str(log))
