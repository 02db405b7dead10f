"""KFP component: ``mindzoo evaluate`` in the runtime image (declaration only; imports only kfp).

Every optional input is passed only when set (``IfPresentPlaceholder``), so the
defaults stay where they are defined: ``mindzoo.config.EvaluateConfig``. The
step writes the executor output itself (``{{$}}``): ``metrics`` gets top1, top5
and loss, ``confusion`` the confusion matrix in KFP's ``confusionMatrix``
format, ``report`` an HTML report (per-class accuracy, misclassified examples).
With ``min_top1``/``min_top5`` the task fails when the model scores lower, so a
pipeline stops before export.
"""

from typing import Optional

from kfp import dsl

from components import images
from components.common import command, connection_flags, executor_input, flag


@dsl.container_component
def evaluate(
    checkpoint: dsl.Input[dsl.Model],
    dataset: dsl.Input[dsl.Dataset],
    metrics: dsl.Output[dsl.Metrics],
    confusion: dsl.Output[dsl.ClassificationMetrics],
    report: dsl.Output[dsl.HTML],
    model: Optional[str] = None,
    split: Optional[str] = None,
    batch_size: Optional[int] = None,
    input_size: Optional[int] = None,
    min_top1: Optional[float] = None,
    min_top5: Optional[float] = None,
    max_misclassified: Optional[int] = None,
    device: Optional[str] = None,
    mode: Optional[str] = None,
    threads: Optional[int] = None,
    data_workers: Optional[int] = None,
    s3_endpoint: Optional[str] = None,
    mlflow_uri: Optional[str] = None,
    cache_dir: Optional[str] = None,
):
    """Score a checkpoint on a whole split: loss, top-1/top-5, per-class accuracy, confusion matrix; gate on accuracy.

    Args:
        checkpoint: train's `checkpoint` output (a pointer to the weights' published s3:// prefix).
        dataset: The preprocess step's Dataset.
        metrics: top1, top5 and loss on the split.
        confusion: The confusion matrix (rows: true class, columns: predicted).
        report: HTML report with per-class accuracy and misclassified examples.
        model: Registered model (default: the one recorded with the checkpoint).
        split: Split to score (default val).
        batch_size: Images per forward pass (every image counts; the last batch is padded).
        input_size: Input side (default: the size the checkpoint was trained at).
        min_top1: Fail the task unless top-1 >= this.
        min_top5: Fail the task unless top-5 >= this.
        max_misclassified: Misclassified examples listed in the report.
        device: cpu, gpu or ascend (pick the matching image).
        mode: graph or pynative.
        threads: CPU kernel threads.
        data_workers: Input pipeline threads.
        s3_endpoint: Object store host:port (default: $MINDZOO_S3_ENDPOINT).
        mlflow_uri: MLflow tracking URI (default: $MLFLOW_TRACKING_URI).
        cache_dir: Local cache folder (a workspace or PVC path for ImageNet-sized data).
    """
    return dsl.ContainerSpec(
        image=images.CPU,
        command=command("evaluate"),
        args=[
            "--checkpoint", checkpoint.uri,
            "--dataset", dataset.uri,
            flag("model", model),
            flag("split", split),
            flag("batch_size", batch_size),
            flag("input_size", input_size),
            flag("min_top1", min_top1),
            flag("min_top5", min_top5),
            flag("max_misclassified", max_misclassified),
            flag("device", device),
            flag("mode", mode),
            flag("threads", threads),
            flag("data_workers", data_workers),
            *connection_flags(s3_endpoint, mlflow_uri, cache_dir),
            *executor_input(),
        ],
    )
