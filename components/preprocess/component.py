"""KFP component: ``mindzoo preprocess`` in the runtime image (declaration only; imports only kfp).

Every optional input is passed only when set (``IfPresentPlaceholder``), so the
defaults stay where they are defined: ``mindzoo.config.PreprocessConfig``.
The step writes the executor output itself (``{{$}}``): the ``dataset``
artifact is a small pointer to the published s3:// prefix (KFP copies input
artifacts into every consuming pod: an ImageNet prefix must not be one), with the
location, counts and content hash as metadata; the data report goes to ``report``.
Endpoints and credentials come from the environment (a Kubernetes Secret).
"""

from typing import Optional

from kfp import dsl

from components import images
from components.common import command, connection_flags, executor_input, flag


@dsl.container_component
def preprocess(
    source: str,
    dataset: dsl.Output[dsl.Dataset],
    report: dsl.Output[dsl.Markdown],
    format: Optional[str] = None,  # noqa: A002 - the CLI flag's name
    label_file: Optional[str] = None,
    output: Optional[str] = None,
    name: Optional[str] = None,
    workers: Optional[int] = None,
    shard_size: Optional[int] = None,
    num_shards: Optional[int] = None,
    verify: Optional[str] = None,
    max_bad_fraction: Optional[float] = None,
    store_size: Optional[int] = None,
    store_quality: Optional[int] = None,
    seed: Optional[int] = None,
    s3_endpoint: Optional[str] = None,
    mlflow_uri: Optional[str] = None,
    cache_dir: Optional[str] = None,
):
    """Convert a raw dataset to MindRecord shards in MinIO (content-addressed, reused when unchanged).

    Args:
        source: Raw dataset: an s3:// prefix (or a path inside the container).
        dataset: A pointer to the published dataset's s3:// prefix; metadata = location, counts, content hash.
        report: The data report (class counts, imbalance, quarantined images, image sizes).
        format: auto | cifar10 | cifar100 | imagefolder | flat.
        label_file: Label file of a flat val folder (`<stem>:<label>` lines or imagenet_label.json).
        output: s3:// root of converted datasets (default s3://mindzoo/datasets).
        name: Dataset name recorded in the manifest.
        workers: Conversion worker processes.
        shard_size: Images per MindRecord shard.
        num_shards: Shards per split (overrides shard_size).
        verify: header (default: headers and JPEG end markers) or decode (every image).
        max_bad_fraction: Fail when more than this fraction of images cannot be decoded.
        store_size: Re-encode images to this short side (0 keeps the original bytes).
        store_quality: JPEG quality for store_size.
        seed: Seed of the train shard order.
        s3_endpoint: Object store host:port (default: $MINDZOO_S3_ENDPOINT from the pipeline-defaults ConfigMap).
        mlflow_uri: MLflow tracking URI (default: $MLFLOW_TRACKING_URI).
        cache_dir: Local work folder (a workspace or PVC path for ImageNet-sized data).
    """
    return dsl.ContainerSpec(
        image=images.CPU,
        command=command("preprocess"),
        args=[
            "--source", source,
            flag("format", format),
            flag("label_file", label_file),
            flag("output", output),
            flag("name", name),
            flag("workers", workers),
            flag("shard_size", shard_size),
            flag("num_shards", num_shards),
            flag("verify", verify),
            flag("max_bad_fraction", max_bad_fraction),
            flag("store_size", store_size),
            flag("store_quality", store_quality),
            flag("seed", seed),
            *connection_flags(s3_endpoint, mlflow_uri, cache_dir),
            *executor_input(),
        ],
    )
