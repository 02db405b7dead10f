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
    classes: tuple[int, ...] = option((), help="Write only these digits, e.g. 0,1,2,3,4,5 (imagefolder only; "
                                               "default all ten), e.g. to pretrain on some and fine-tune on others")

    def __post_init__(self) -> None:
        check(self.format != "cifar10" or self.size == 32, "size", "the CIFAR-10 layout is 32x32 only")
        check(not self.classes or self.format == "imagefolder", "classes", "needs --format imagefolder")
        check(all(0 <= c <= 9 for c in self.classes) and len(set(self.classes)) == len(self.classes), "classes",
              "must be distinct digits 0..9")
        check(8 <= self.size <= 512, "size", "must be in 8..512")
        check(0.0 < self.val_fraction < 1.0, "val_fraction", "must be between 0 and 1")


def _default_workers() -> int:
    import os  # only this default needs it; the imports above belong to the foundation

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cpus))


MAX_PIXELS = 89_478_485  # Pillow's Image.MAX_IMAGE_PIXELS: above it Pillow warns of a decompression bomb


@dataclass(frozen=True)
class PreprocessConfig:
    """Convert a raw dataset (CIFAR-10 binaries or an ImageNet folder) to MindRecord shards in MinIO.

    Every field except ``workers``, ``force``, ``report_dir``, ``cache_dir`` and ``max_bad_fraction`` changes
    the bytes written, so it is part of the content hash that names the output prefix.
    """

    source: str = option(help="Raw dataset: a local folder or an s3:// prefix")
    format: Literal["auto", "cifar10", "cifar100", "imagefolder", "flat"] = option(
        "auto", help="Source layout; auto detects CIFAR-10/CIFAR-100 binaries, train/ + val/ class folders, "
                     "or a flat folder")
    cifar100_labels: Literal["fine", "coarse"] = option(
        "fine", help="CIFAR-100 labels: fine (100 classes, fine_label_names.txt) or coarse (20 superclasses)")
    train_only: bool = option(False, help="Allow a dataset without a val split (e.g. CIFAR without its test "
                                          "batch); train and evaluate then say there is no validation split")
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
                                                 "(unreadable, truncated, undecodable or too large)")
    max_pixels: int = option(MAX_PIXELS, help="Quarantine images of more than this many pixels (width x height; "
                                              "default: Pillow's decompression-bomb warning limit). 0: no limit")
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
        check(self.max_pixels >= 0, "max_pixels", "must be >= 0 (0: no limit)")


_RUN_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _join_overrides(items: tuple[str, ...]) -> tuple[str, ...]:
    """Undo the comma split of tuple flags: ``schedule.milestones=70,140`` is one override."""
    joined: list[str] = []
    for item in items:
        if "=" in item or not joined:
            joined.append(item)
        else:
            joined[-1] += "," + item
    return tuple(joined)


# ``--set`` keys that are train flags, not recipe keys: the ModelZoo configs' ``pre_trained`` +
# ``checkpoint_path`` (continue from a checkpoint) and timm/MindCV-style fine-tuning settings.
_FLAG_KEYS: dict[str, tuple[str, type]] = {
    "checkpoint_path": ("init_from", str), "finetune.freeze": ("freeze", str),
    "finetune.head_lr_mult": ("head_lr_mult", float), "finetune.strict": ("strict", bool)}


def _fine_tuning_overrides(cfg: TrainConfig) -> None:
    """Move ``pre_trained``/``checkpoint_path``/``finetune.*`` out of ``--set`` onto their flags."""
    from mindzoo.configkit import coerce

    items = _join_overrides(cfg.set)
    pairs = [item.split("=", 1) for item in items if "=" in item]
    taken = {k.strip(): v.strip() for k, v in pairs if k.strip() in (*_FLAG_KEYS, "pre_trained")}
    if not taken:
        return
    object.__setattr__(cfg, "set", tuple(i for i in items if i.split("=", 1)[0].strip() not in taken))
    if "pre_trained" in taken:
        pre_trained = coerce(taken.pop("pre_trained"), bool, "train.set.pre_trained")
        check(not pre_trained or "checkpoint_path" in taken or bool(cfg.init_from), "set",
              "pre_trained=True needs checkpoint_path=<checkpoint> (or --init-from)")
        if not pre_trained:
            taken.pop("checkpoint_path", None)  # the ModelZoo configs keep a path with pre_trained: False
    for key, value in taken.items():
        name, tp = _FLAG_KEYS[key]
        new = coerce(value, tp, f"train.set.{key}")
        current = getattr(cfg, name)
        check(name != "init_from" or not current or current == new, "init_from",
              f"--init-from {current} and --set checkpoint_path={value} disagree")
        object.__setattr__(cfg, name, new)


@dataclass(frozen=True)
class TrainConfig:
    """Train a registered model with its ModelZoo recipe on a `mindzoo preprocess` output.

    The run writes everything under ``<output>/<run id>``; started again with the same run id it
    resumes from the last published checkpoint.
    """

    dataset: str = option(help="Converted dataset: the s3:// prefix `mindzoo preprocess` published (or a local folder)",
                          artifact=True)
    model: str = option("", help="Registered model (default: the recipe's model)")
    recipe: str = option("", help="Recipe name or YAML file (default: the recipe named after the model)")
    set: tuple[str, ...] = option((), help="Override a recipe key, e.g. --set optim.weight_decay=0 (repeatable)")
    output: str = option("s3://mindzoo/runs", help="s3:// root; the run writes to <output>/<run id>")
    run_id: str = option("", help="Run id; run again with the same id to resume (default: a new id)")
    workers: int = option(1, help="Local data-parallel worker processes (started with one scheduler)")
    input_size: int = option(0, help="Input side in pixels (0: the recipe's; smaller sizes train faster on CPU)")
    steps_per_epoch: int = option(0, help="Cap on steps per epoch (0: the whole train split)")
    checkpoint_every_steps: int = option(0, help="Also checkpoint every N steps (0: only the recipe's epochs)")
    final_eval: bool = option(True, help="Evaluate on the val split after the last epoch")
    log_every: int = option(20, help="One progress line every N steps when stderr is not a terminal")
    device: Literal["cpu", "gpu", "ascend"] = option("cpu", help="Device target (one code path for all three)")
    engine: Literal["mindspore", "torch"] = option(
        "mindspore", help="Training engine: mindspore, or torch (cpu/gpu; --workers N runs torchrun, DDP)")
    mode: Literal["graph", "pynative"] = option("graph", help="MindSpore execution mode (pynative: no compile, slower)")
    threads: int = option(0, help="CPU kernel threads per process (0: the framework default)")
    data_workers: int = option(0, help="Input pipeline threads per process (0: CPUs / processes)")
    cache_dir: str = option("", help="Local dataset cache (default: $MINDZOO_CACHE_DIR or ~/.cache/mindzoo)")
    init_from: str = option("", help="Start from these weights (weights only: fresh optimizer, schedule, epochs): "
                                     "a mindzoo checkpoint folder or s3:// prefix, models:/<name>/<version>, a torch "
                                     "engine checkpoint, or a .ckpt in mindzoo or ModelZoo names",
                            artifact=True)
    strict: bool = option(False, help="With --init-from: a class-count difference is an error instead of "
                                      "re-initialising the classifier head")
    freeze: Literal["none", "backbone"] = option(
        "none", help="Fine-tuning: backbone trains only the classifier head (also --set finetune.freeze=backbone)")
    head_lr_mult: float = option(1.0, help="Fine-tuning: the classifier head's LR is the schedule's times this "
                                           "(also --set finetune.head_lr_mult=10)")

    def __post_init__(self) -> None:
        _fine_tuning_overrides(self)
        check(bool(self.dataset.strip()), "dataset", "must not be empty")
        check(self.output.startswith("s3://") and len(self.output) > len("s3://"), "output",
              f"must be an s3:// URI (got {self.output!r})")
        check(self.engine != "torch" or self.device != "ascend", "device",
              "the torch engine trains on cpu or gpu; use --engine mindspore on Ascend")
        check(set(self.run_id) <= _RUN_ID_CHARS and len(self.run_id) <= 100, "run_id",
              "use at most 100 letters, digits, '.', '_' or '-'")
        overrides = _join_overrides(self.set)
        for item in overrides:
            check("=" in item and bool(item.split("=", 1)[0].strip()), "set", f"expected key=value (got {item!r})")
        object.__setattr__(self, "set", overrides)
        check(1 <= self.workers <= 64, "workers", "must be in 1..64")
        check(self.input_size == 0 or self.input_size >= 8, "input_size", "must be 0 (the recipe's) or >= 8")
        check(self.steps_per_epoch >= 0, "steps_per_epoch", "must be >= 0")
        check(self.checkpoint_every_steps >= 0, "checkpoint_every_steps", "must be >= 0")
        check(self.log_every >= 1, "log_every", "must be >= 1")
        check(0 <= self.threads <= 256, "threads", "must be in 0..256")
        check(0 <= self.data_workers <= 64, "data_workers", "must be in 0..64")
        check(self.freeze in ("none", "backbone"), "freeze", "must be none or backbone")
        check(self.head_lr_mult > 0, "head_lr_mult", "must be > 0")
        check(not (self.strict or self.freeze != "none" or self.head_lr_mult != 1.0) or bool(self.init_from),
              "init_from", "--strict, --freeze and --head-lr-mult fine-tune: give the weights to start from")

    def overrides(self) -> dict[str, str]:
        """``--set`` as the ``{dotted key: value}`` that ``load_recipe`` takes."""
        return {k.strip(): v.strip() for k, v in (item.split("=", 1) for item in self.set)}


@dataclass(frozen=True)
class EvaluateConfig:
    """Score a checkpoint on a whole split: loss, top-1/top-5, per-class accuracy, confusion matrix."""

    checkpoint: str = option(help="Checkpoint: an s3:// prefix train published (its `model` or a checkpoint), "
                                  "a local folder, or a .ckpt file", artifact=True)
    dataset: str = option(help="Converted dataset: the s3:// prefix `mindzoo preprocess` published (or a local folder)",
                          artifact=True)
    model: str = option("", help="Registered model (default: the one recorded with the checkpoint)")
    split: str = option("val", help="Split to score")
    batch_size: int = option(64, help="Images per forward pass (the last batch is padded; every image counts)")
    input_size: int = option(0, help="Input side (0: the size the checkpoint was trained at)")
    min_top1: float = option(0.0, help="Fail unless top-1 accuracy >= this (0..1)")
    min_top5: float = option(0.0, help="Fail unless top-5 accuracy >= this (0..1)")
    report_dir: str = option("", help="Also write the report files to this local folder")
    max_misclassified: int = option(200, help="Misclassified examples listed in the report")
    device: Literal["cpu", "gpu", "ascend"] = option("cpu", help="Device target (one code path for all three)")
    mode: Literal["graph", "pynative"] = option("graph", help="MindSpore execution mode (pynative: no compile, slower)")
    threads: int = option(0, help="CPU kernel threads per process (0: the framework default)")
    data_workers: int = option(0, help="Input pipeline threads per process (0: CPUs / processes)")
    cache_dir: str = option("", help="Local dataset cache (default: $MINDZOO_CACHE_DIR or ~/.cache/mindzoo)")

    def __post_init__(self) -> None:
        check(bool(self.checkpoint.strip()), "checkpoint", "must not be empty")
        check(bool(self.dataset.strip()), "dataset", "must not be empty")
        check(bool(self.split.strip()), "split", "must not be empty")
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(self.input_size == 0 or self.input_size >= 8, "input_size", "must be 0 (the checkpoint's) or >= 8")
        check(0.0 <= self.min_top1 <= 1.0, "min_top1", "must be in [0, 1]")
        check(0.0 <= self.min_top5 <= 1.0, "min_top5", "must be in [0, 1]")
        check(self.max_misclassified >= 0, "max_misclassified", "must be >= 0")
        check(0 <= self.threads <= 256, "threads", "must be in 0..256")
        check(0 <= self.data_workers <= 64, "data_workers", "must be in 0..64")


EXPORT_FORMATS = ("mindir", "onnx", "air")


@dataclass(frozen=True)
class ExportConfig:
    """Export a checkpoint to MindIR (always), ONNX (where every op exports) and AIR (Ascend only),
    check the MindIR against the checkpointed network, publish it and register it in MLflow."""

    checkpoint: str = option(help="Checkpoint: an s3:// prefix train published (its `model`), a local folder "
                                  "holding model.ckpt + model.json, or a .ckpt file (with --model)", artifact=True)
    model: str = option("", help="Registered model (default: the one recorded with the checkpoint)")
    num_classes: int = option(0, help="Classes (0: recorded with the checkpoint)")
    input_size: int = option(0, help="Input side in pixels (0: the checkpoint's, else the data config's)")
    batch_size: int = option(1, help="Batch dimension of the exported graph (the 310 flow runs batch 1)")
    formats: tuple[str, ...] = option(("auto",), help="mindir,onnx,air or auto (MindIR, ONNX where possible, "
                                                      "AIR on Ascend)")
    name: str = option("", help="File name stem (default: the model name)")
    output: str = option("", help="s3:// prefix to publish to (default: <run>/export next to the training run)")
    local_dir: str = option("", help="Also keep the exported files in this local folder")
    tolerance: float = option(1e-3, help="Parity check: max abs logit difference MindIR vs checkpoint")
    register: bool = option(True, help="Register a new version in the MLflow Model Registry")
    registered_model: str = option("", help="Registered model name (default: the recipe's name)")
    device: Literal["cpu", "gpu", "ascend"] = option("cpu", help="Device target (AIR needs ascend)")
    cache_dir: str = option("", help="Local work folder (default: $MINDZOO_CACHE_DIR or ~/.cache/mindzoo)")

    def __post_init__(self) -> None:
        check(bool(self.checkpoint.strip()), "checkpoint", "must not be empty")
        check(self.num_classes >= 0, "num_classes", "must be >= 0")
        check(self.input_size == 0 or self.input_size >= 8, "input_size", "must be 0 (the checkpoint's) or >= 8")
        check(1 <= self.batch_size <= 4096, "batch_size", "must be in 1..4096")
        formats = tuple(f.strip().lower() for f in self.formats if f.strip()) or ("auto",)
        for fmt in formats:
            check(fmt in (*EXPORT_FORMATS, "auto"), "formats", f"unknown format {fmt!r}; use mindir, onnx, air or auto")
        object.__setattr__(self, "formats", formats)
        check(not self.output or (self.output.startswith("s3://") and len(self.output) > 5), "output",
              f"must be an s3:// URI (got {self.output!r})")
        check(self.tolerance >= 0, "tolerance", "must be >= 0")


@dataclass(frozen=True)
class InferConfig:
    """Run a MindIR one image at a time (batch 1) over a validation set, as the recipes' Ascend 310 flow does."""

    model: str = option(help="MindIR: a .mindir file, an export folder, the s3:// prefix `mindzoo export` published, "
                             "or a registered version (models:/<name>/<version>, models:/<name>@<alias>)",
                        artifact=True)
    data: str = option(help="Images: a converted dataset (s3:// prefix or folder with dataset.json), a folder of "
                            "class subfolders, or a flat folder with --label-file", artifact=True)
    label_file: str = option("", help="Labels of a flat folder: imagenet_label.json {file: index} or "
                                      "`<stem>:<index>` lines (default: found in the folder)")
    split: str = option("val", help="Split of a converted dataset (or subfolder of an image tree) to score")
    data_config: str = option("", help="Data config for preprocessing (default: the one exported with the MindIR)")
    input_size: int = option(0, help="Crop side (0: the MindIR's input side)")
    device: Literal["cpu", "ascend310", "ascend310p"] = option(
        "cpu", help="cpu: MindSpore's MindIR runtime; ascend310/ascend310p: MindSpore Lite's Ascend backend")
    device_id: int = option(0, help="Ascend device id")
    output_dir: str = option("infer_result", help="Local folder for acc.log, predictions.csv and latency.json")
    output: str = option("", help="Also publish the results to this s3:// prefix")
    warmup: int = option(3, help="Untimed warm-up runs before the timed loop")
    max_images: int = option(0, help="Score at most this many images (0: all)")
    max_bad_fraction: float = option(0.0, help="Fail if more than this fraction of images cannot be decoded")
    cache_dir: str = option("", help="Local dataset cache (default: $MINDZOO_CACHE_DIR or ~/.cache/mindzoo)")

    def __post_init__(self) -> None:
        check(bool(self.model.strip()), "model", "must not be empty")
        check(bool(self.data.strip()), "data", "must not be empty")
        check(self.input_size == 0 or self.input_size >= 8, "input_size", "must be 0 (the MindIR's) or >= 8")
        check(self.device_id >= 0, "device_id", "must be >= 0")
        check(bool(self.output_dir.strip()), "output_dir", "must not be empty")
        check(not self.output or (self.output.startswith("s3://") and len(self.output) > 5), "output",
              f"must be an s3:// URI (got {self.output!r})")
        check(self.warmup >= 0, "warmup", "must be >= 0")
        check(self.max_images >= 0, "max_images", "must be >= 0")
        check(0.0 <= self.max_bad_fraction <= 1.0, "max_bad_fraction", "must be in [0, 1]")


@dataclass(frozen=True)
class LocateConfig:
    """Check that a URI given as a pipeline parameter names something published, and hand it on as a pointer."""

    uri: str = option(help="A published s3:// prefix (a dataset, a checkpoint, an export) or, for a model, a "
                           "registered version: models:/<name>/<version>, models:/<name>@<alias>")
    kind: Literal["dataset", "checkpoint", "model"] = option("model", help="What the URI must name")

    def __post_init__(self) -> None:
        uri = self.uri.strip()
        check(bool(uri), "uri", "must not be empty")
        schemes = ("s3://", "models:/") if self.kind == "model" else ("s3://",)
        check(uri.startswith(schemes) and len(uri) > len("s3://"), "uri",
              f"a {self.kind} must be {' or '.join(s + '...' for s in schemes)} (got {uri!r})")
        object.__setattr__(self, "uri", uri)


@dataclass(frozen=True)
class CheckpointImportConfig:
    """A ModelZoo .ckpt -> a mindzoo checkpoint folder (``model.ckpt`` + ``model.json``)."""

    src: str = option(help="The ModelZoo .ckpt (local file or s3:// object)", metadata={"cli": False})
    dest: str = option(help="The checkpoint folder to write (local, must not exist, or an s3:// prefix)",
                       metadata={"cli": False})
    recipe: str = option(help="The recipe the checkpoint was trained with (names the model and its data config)")
    num_classes: int = option(0, help="Expected class count (0: whatever the checkpoint's head has)")
    input_size: int = option(0, help="Input side recorded for evaluate/export (0: the recipe's)")

    def __post_init__(self) -> None:
        check(bool(self.src.strip()), "src", "must not be empty")
        check(bool(self.dest.strip()), "dest", "must not be empty")
        check(bool(self.recipe.strip()), "recipe", "must not be empty")
        check(self.num_classes >= 0, "num_classes", "must be >= 0")
        check(self.input_size == 0 or self.input_size >= 8, "input_size", "must be 0 (the recipe's) or >= 8")


@dataclass(frozen=True)
class CheckpointExportConfig:
    """A mindzoo checkpoint -> a .ckpt in the ModelZoo's parameter names."""

    src: str = option(help="A mindzoo checkpoint: folder, s3:// prefix, or .ckpt with a model.json sidecar",
                      metadata={"cli": False})
    dest: str = option(help="The .ckpt to write (local file or s3:// object)", metadata={"cli": False})
    to: Literal["modelzoo"] = option("modelzoo", help="Naming to write (the MindSpore ModelZoo's)")

    def __post_init__(self) -> None:
        check(bool(self.src.strip()), "src", "must not be empty")
        check(self.dest.endswith(".ckpt"), "dest", f"must name a .ckpt file (got {self.dest!r})")
        check(self.to == "modelzoo", "to", "must be modelzoo")


_MLFLOW_RUN_ID_CHARS = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class RunsReplayConfig:
    """Deliver the tracking calls a step saved to a spill file while MLflow was unreachable."""

    spill: str = option(help="The spill file a step's warning named", metadata={"cli": False})
    tracking_uri: str = option("", help="MLflow to deliver to (default: the one the step used, from the file)")

    def __post_init__(self) -> None:
        check(bool(self.spill.strip()), "spill", "must not be empty")
        check(not self.tracking_uri or "://" in self.tracking_uri, "tracking_uri",
              f"must be a URI such as http://host:5000 (got {self.tracking_uri!r})")


@dataclass(frozen=True)
class RunsCompareConfig:
    """Compare MLflow runs of one experiment: differing params, key metrics, the best run, overlaid curves."""

    experiment: str = option(help="Experiment name (mindzoo/<model>/<dataset hash>) or id", metadata={"cli": False})
    run_ids: tuple[str, ...] = option((), help="Runs to compare (default: the --last N)", metadata={"cli": False})
    last: int | None = option(None, help="Compare the N most recent runs of --step (default 10; not with RUN_IDs)")
    step: Literal["train", "evaluate", "export", "infer", "any"] = option(
        "train", help="Whose runs --last picks (the steps of one pipeline run add their metrics to its train run)")
    format: Literal["table", "csv", "json", "markdown"] = option("table", help="Output format")
    plot: str = option("", help="Also overlay the runs' curves in this image file (.png, .svg or .pdf)")

    def __post_init__(self) -> None:
        check(bool(self.experiment.strip()), "experiment", "must not be empty")
        check(self.last is None or self.last >= 1, "last", f"must be >= 1 (got {self.last})")
        check(self.last is None or not self.run_ids, "last", "give --last N or RUN_IDs, not both")
        for run_id in self.run_ids:
            check(len(run_id) == 32 and set(run_id) <= _MLFLOW_RUN_ID_CHARS, "run_ids",
                  f"not an MLflow run id (32 hex digits): {run_id!r}")
        check(len(set(self.run_ids)) == len(self.run_ids), "run_ids", "a run is listed twice")
        check(not self.plot or self.plot.lower().endswith((".png", ".svg", ".pdf")), "plot",
              f"must end in .png, .svg or .pdf (got {self.plot!r})")

    @property
    def limit(self) -> int:
        return self.last or 10
