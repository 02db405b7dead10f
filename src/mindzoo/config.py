"""One frozen dataclass per step; CLI flags derive from these (see configkit).

Keys in error messages are dotted from the step name: ``stack.minio_port``,
``storage.endpoint``. Credentials are ``secret`` fields: they come from the
environment or the local stack, never from flags, and are never logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mindzoo.configkit import check, option, secret


def _port(value: int, key: str) -> None:
    check(1 <= value <= 65535, key, f"must be a TCP port in 1..65535 (got {value})")


@dataclass(frozen=True)
class StorageConfig:
    """Where the S3-compatible object store is; empty endpoint → env, then local stack."""

    endpoint: str = option("", help="S3 endpoint host:port (default: $MINDZOO_S3_ENDPOINT, then the local stack)")
    secure: bool = option(False, help="Use HTTPS for the S3 endpoint")
    region: str = option("us-east-1", help="S3 region")
    retry_seconds: float = option(60.0, help="Give up on a transient S3 failure after this long")
    access_key: str = secret(help="$AWS_ACCESS_KEY_ID or the local stack's")
    secret_key: str = secret(help="$AWS_SECRET_ACCESS_KEY or the local stack's")

    def __post_init__(self) -> None:
        check(self.retry_seconds >= 0, "retry_seconds", "must be >= 0")
        check("://" not in self.endpoint, "endpoint", "give host:port without a scheme (use --secure for HTTPS)")


@dataclass(frozen=True)
class TrackingConfig:
    """MLflow tracking; empty URI → $MLFLOW_TRACKING_URI, then the local stack, else off."""

    uri: str = option("", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, then the local stack)")
    experiment: str = option("", help="MLflow experiment (default: one per model and dataset)")
    enabled: bool = option(True, help="Log to MLflow when a tracking server is known")


@dataclass(frozen=True)
class StackConfig:
    """The local stack: MinIO, MLflow and a container engine on loopback."""

    host: str = option("127.0.0.1", help="Address the servers listen on (loopback only by design)")
    minio_port: int = option(19000, help="MinIO S3 API port")
    minio_console_port: int = option(19001, help="MinIO console port")
    mlflow_port: int = option(15000, help="MLflow tracking server port")
    engine: Literal["auto", "docker", "podman", "none"] = option(
        "auto", help="Container engine: Docker if it answers, else podman"
    )
    buckets: tuple[str, ...] = option(("mindzoo", "mlflow"), help="Buckets to create (comma-separated)")
    timeout: float = option(60.0, help="Seconds to wait for each server to become healthy")

    def __post_init__(self) -> None:
        _port(self.minio_port, "minio_port")
        _port(self.minio_console_port, "minio_console_port")
        _port(self.mlflow_port, "mlflow_port")
        ports = [self.minio_port, self.minio_console_port, self.mlflow_port]
        check(len(set(ports)) == len(ports), "mlflow_port", f"ports must differ (got {ports})")
        check(self.timeout > 0, "timeout", "must be > 0")
        for name in self.buckets:
            check(3 <= len(name) <= 63 and name == name.lower(), "buckets", f"invalid bucket name {name!r}")


@dataclass(frozen=True)
class DigitsConfig:
    """The bundled scikit-learn digits, written in a real on-disk dataset layout."""

    format: Literal["cifar10", "imagefolder"] = option("cifar10", help="On-disk layout to write")
    size: int = option(32, help="Image side in pixels (digits are 8x8, upscaled)")
    val_fraction: float = option(0.2, help="Fraction of each class held out for validation")
    seed: int = option(0, help="Seed of the train/val split")

    def __post_init__(self) -> None:
        check(self.format != "cifar10" or self.size == 32, "size", "the CIFAR-10 layout is 32x32 only")
        check(8 <= self.size <= 512, "size", "must be in 8..512")
        check(0.0 < self.val_fraction < 1.0, "val_fraction", "must be between 0 and 1")
