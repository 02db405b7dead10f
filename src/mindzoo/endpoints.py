"""Find the object store and the tracking server without extra flags.

Order: explicit config → environment (what KFP tasks get from a Kubernetes
Secret) → the local stack's state folder (what a developer has after
``mindzoo stack up``). Steps call these; nobody else reads the state folder.
"""

from __future__ import annotations

import dataclasses
import os

from mindzoo.config import StorageConfig, TrackingConfig
from mindzoo.errors import MindzooError
from mindzoo.stack import process, state

ENV_S3_ENDPOINT = "MINDZOO_S3_ENDPOINT"
ENV_S3_SECURE = "MINDZOO_S3_SECURE"


def _stack_up() -> state.Endpoints | None:
    endpoints = state.load_endpoints()
    minio = process.load("minio", state.services_dir())
    if endpoints and minio and minio.alive():
        return endpoints
    return None


def resolve_storage(cfg: StorageConfig | None = None) -> StorageConfig:
    """Fill endpoint and credentials; raise a one-line error when none is known."""
    cfg = cfg or StorageConfig()
    endpoint = cfg.endpoint or os.environ.get(ENV_S3_ENDPOINT, "")
    access = cfg.access_key or os.environ.get("AWS_ACCESS_KEY_ID", "")
    secret = cfg.secret_key or os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    secure = cfg.secure or os.environ.get(ENV_S3_SECURE, "").lower() in ("1", "true", "yes")
    if not endpoint or not (access and secret):
        stack = _stack_up()
        if stack is not None:
            creds = state.credentials()
            endpoint = endpoint or stack.s3_endpoint
            if not (access and secret):
                access, secret = creds["access_key"], creds["secret_key"]
    if not endpoint:
        raise MindzooError(
            f"no object store configured: pass --storage-endpoint, set ${ENV_S3_ENDPOINT}, or run `mindzoo stack up`"
        )
    if not (access and secret):
        raise MindzooError(f"no credentials for the object store at {endpoint}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    endpoint = endpoint.removeprefix("http://").removeprefix("https://")
    return dataclasses.replace(cfg, endpoint=endpoint, access_key=access, secret_key=secret, secure=secure)


def resolve_tracking_uri(cfg: TrackingConfig | None = None) -> str | None:
    """The MLflow URI to log to, or None when tracking is off or unknown."""
    cfg = cfg or TrackingConfig()
    if not cfg.enabled:
        return None
    uri = cfg.uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    if uri:
        return uri
    stack = _stack_up()
    return stack.mlflow_uri if stack else None
