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


def _default_workers() -> int:
    import os  # only this default needs it; the imports above belong to the foundation

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cpus))


@dataclass(frozen=True)
class PreprocessConfig:
    """Convert a raw dataset (CIFAR-10 binaries or an ImageNet folder) to MindRecord shards in MinIO.

    Every field except ``workers``, ``force``, ``report_dir``, ``cache_dir`` and ``max_bad_fraction`` changes
    the bytes written, so it is part of the content hash that names the output prefix.
    """

    source: str = option(help="Raw dataset: a local folder or an s3:// prefix")
    format: Literal["auto", "cifar10", "imagefolder", "flat"] = option(
        "auto", help="Source layout; auto detects CIFAR-10 binaries, train/ + val/ class folders, or a flat folder")
    label_file: str = option("", help="Labels of a flat val folder: `<stem>:<label>` lines or imagenet_label.json "
                                      "{file: index} (local path or s3://; default: found next to the images)")
    output: str = option("s3://mindzoo/datasets",
                         help="s3:// root; the dataset is published to <output>/<content hash>")
    name: str = option("", help="Dataset name recorded in the manifest (default: the source folder's name)")
    workers: int = option(help="Conversion worker processes (default: CPUs available, at most 8)",
                          default_factory=_default_workers)
    shard_size: int = option(2048, help="Images per MindRecord shard (ignored when --num-shards is set)")
    num_shards: int = option(0, help="Shards per split (0: from --shard-size)")
    verify: Literal["header", "decode"] = option(
        "header", help="header: parse headers and require JPEG end markers (PNG/BMP are decoded); "
                       "decode: decode every image too (about 3x slower conversion)")
    max_bad_fraction: float = option(0.001, help="Fail if more than this fraction of images is quarantined "
                                                 "(unreadable, truncated or undecodable)")
    store_size: int = option(0, help="Re-encode images whose short side exceeds this as JPEG at this short side "
                                     "(FFCV-style; faster training input). 0 keeps the original bytes, as the recipes")
    store_quality: int = option(90, help="JPEG quality of images re-encoded for --store-size")
    seed: int = option(0, help="Seed of the train shard order (records are shuffled once at write time)")
    force: bool = option(False, help="Convert and publish even if this content hash is already published")
    report_dir: str = option("", help="Also write report.json/.md/.html to this local folder")
    cache_dir: str = option("", help="Local work folder (default: $MINDZOO_CACHE_DIR or ~/.cache/mindzoo)")

    def __post_init__(self) -> None:
        check(bool(self.source.strip()), "source", "must not be empty")
        check(self.output.startswith("s3://") and len(self.output) > len("s3://"), "output",
              f"must be an s3:// URI (got {self.output!r})")
        check(self.workers >= 1, "workers", "must be >= 1")
        check(self.shard_size >= 1, "shard_size", "must be >= 1")
        check(self.num_shards >= 0, "num_shards", "must be >= 0")
        check(0.0 <= self.max_bad_fraction <= 1.0, "max_bad_fraction", "must be in [0, 1]")
        check(self.store_size == 0 or self.store_size >= 32, "store_size", "must be 0 (keep) or >= 32")
        check(1 <= self.store_quality <= 100, "store_quality", "must be in 1..100")
