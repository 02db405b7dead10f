"""KFP component: ``mindzoo preprocess`` in the runtime image (declaration only; imports only kfp).

Every optional input is passed only when set (``IfPresentPlaceholder``), so the
defaults stay where they are defined: ``mindzoo.config.PreprocessConfig``.
The step writes the executor output itself (``{{$}}``): the ``dataset``
artifact's URI becomes the published s3:// prefix, with counts and the content
hash as metadata, and the data report goes to the ``report`` artifact's file.
Endpoints and credentials come from the environment (a Kubernetes Secret).
"""

from typing import Optional

from kfp import dsl

from components import images


def _flag(name: str, value: object) -> dsl.IfPresentPlaceholder:
    return dsl.IfPresentPlaceholder(input_name=name, then=[f"--{name.replace('_', '-')}", value])


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
):
    """Convert a raw dataset to MindRecord shards in MinIO (content-addressed, reused when unchanged).

    Args:
        source: Raw dataset: an s3:// prefix (or a path inside the container).
        dataset: The published dataset; URI = its s3:// prefix, metadata = counts and content hash.
        report: The data report (class counts, imbalance, quarantined images, image sizes).
        format: auto | cifar10 | imagefolder | flat.
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
    """
    return dsl.ContainerSpec(
        image=images.CPU,
        command=["mindzoo", "preprocess"],
        args=[
            "--source", source,
            _flag("format", format),
            _flag("label_file", label_file),
            _flag("output", output),
            _flag("name", name),
            _flag("workers", workers),
            _flag("shard_size", shard_size),
            _flag("num_shards", num_shards),
            _flag("verify", verify),
            _flag("max_bad_fraction", max_bad_fraction),
            _flag("store_size", store_size),
            _flag("store_quality", store_quality),
            _flag("seed", seed),
            "--executor-input", dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER,
        ],
    )
