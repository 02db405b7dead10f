"""KFP component: ``mindzoo infer`` (the recipes' Ascend 310 flow) in the runtime image (imports only kfp).

The step writes the executor output itself (``{{$}}``): ``metrics`` carries
top-1/top-5, image counts and latency statistics (shown by the KFP UI);
``results`` holds acc.log, predictions.csv and latency.json. ``device``
ascend310/ascend310p needs the Ascend image (MindSpore Lite): the pipelines run
those branches in ``images.ASCEND`` on the 310 node pool.
"""

from typing import Optional

from kfp import dsl

from components import images
from components.common import command, connection_flags, executor_input, flag


@dsl.container_component
def infer310(
    model: dsl.Input[dsl.Model],
    data: dsl.Input[dsl.Dataset],
    metrics: dsl.Output[dsl.Metrics],
    results: dsl.Output[dsl.Artifact],
    label_file: Optional[str] = None,
    split: Optional[str] = None,
    data_config: Optional[str] = None,
    input_size: Optional[int] = None,
    device: Optional[str] = None,
    device_id: Optional[int] = None,
    output: Optional[str] = None,
    max_images: Optional[int] = None,
    max_bad_fraction: Optional[float] = None,
    s3_endpoint: Optional[str] = None,
    mlflow_uri: Optional[str] = None,
    cache_dir: Optional[str] = None,
):
    """Run a MindIR batch 1 over a validation set; acc.log, predictions CSV and latency statistics.

    Args:
        model: export's `model` (a pointer to its s3:// prefix); in infer_pipeline locate's.
        data: preprocess's `dataset` (a pointer to a converted dataset's s3:// prefix) or the locate step's.
        metrics: top1, top5, images, bad_images, latency mean/p50/p90/p99 ms, images_per_second.
        results: acc.log, predictions.csv, latency.json (and bad_images.txt when any).
        label_file: Label file of a flat folder.
        split: Split of a converted dataset (default val).
        data_config: Preprocessing data config (default: exported with the MindIR).
        input_size: Crop side (default: the MindIR's).
        device: cpu | ascend310 | ascend310p.
        device_id: Ascend device id.
        output: Also publish the results to this s3:// prefix.
        max_images: Score at most this many images.
        max_bad_fraction: Fail above this fraction of undecodable images.
        s3_endpoint: Object store host:port (default: $MINDZOO_S3_ENDPOINT).
        mlflow_uri: MLflow tracking URI (default: $MLFLOW_TRACKING_URI).
        cache_dir: Local cache folder (a workspace or PVC path for ImageNet-sized data).
    """
    return dsl.ContainerSpec(
        image=images.CPU,
        command=command("infer"),
        args=[
            "--model", model.uri,
            "--data", data.uri,
            flag("label_file", label_file),
            flag("split", split),
            flag("data_config", data_config),
            flag("input_size", input_size),
            flag("device", device),
            flag("device_id", device_id),
            flag("output", output),
            flag("max_images", max_images),
            flag("max_bad_fraction", max_bad_fraction),
            *connection_flags(s3_endpoint, mlflow_uri, cache_dir),
            *executor_input(),
        ],
    )
