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
    argv, env = command(cfg.host, cfg.mlflow_port, f"sqlite:///{root / 'mlflow.db'}", s3_url, creds)
    pid = process.spawn(argv, log, env=env)
    url = f"http://{cfg.host}:{cfg.mlflow_port}"
    return process.Service(NAME, pid, url, f"{url}/health", str(log))


def command(host: str, port: int, backend_uri: str, s3_url: str, creds: dict[str, str],
            app_name: str = "") -> tuple[list[str], dict[str, str]]:
    """argv and environment of ``mlflow server`` as the stack runs it (the chart's tests start one
    with ``app_name="basic-auth"`` the same way)."""
    argv = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend_uri,
        # Proxied artifacts: clients upload through the server and need no S3 credentials.
        "--artifacts-destination", "s3://mlflow/artifacts", "--serve-artifacts",
        "--host", host, "--port", str(port), "--workers", "1",
        *(["--app-name", app_name] if app_name else []),
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
    return argv, env
