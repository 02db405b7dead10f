"""The real MinIO server, built from its Go source into the cache (``make tools``)."""

from __future__ import annotations

from mindzoo import paths
from mindzoo.config import StackConfig
from mindzoo.errors import MindzooError
from mindzoo.stack import process, state

NAME = "minio"


def start(cfg: StackConfig) -> process.Service:
    binary = paths.tool("minio")
    if not binary.exists():
        raise MindzooError(f"MinIO server not built at {binary}; run `make tools` (builds it from Go source)")
    creds = state.credentials()
    data = state.root() / "minio" / "data"
    data.mkdir(parents=True, exist_ok=True)
    log = state.logs_dir() / "minio.log"
    address = f"{cfg.host}:{cfg.minio_port}"
    pid = process.spawn(
        [str(binary), "server", str(data), "--address", address,
         "--console-address", f"{cfg.host}:{cfg.minio_console_port}", "--quiet"],
        log,
        env={
            "MINIO_ROOT_USER": creds["access_key"],
            "MINIO_ROOT_PASSWORD": creds["secret_key"],
            # No phoning home from a loopback test server.
            "MINIO_UPDATE": "off",
            "MINIO_BROWSER": "on",
        },
    )
    return process.Service(NAME, pid, f"http://{address}", f"http://{address}/minio/health/live", str(log))


def ensure_buckets(endpoint: str, buckets: tuple[str, ...]) -> None:
    from minio import Minio

    creds = state.credentials()
    client = Minio(endpoint, access_key=creds["access_key"], secret_key=creds["secret_key"], secure=False)
    for bucket in buckets:
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)
