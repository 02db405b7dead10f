"""KFP component: ``mindzoo export`` in the runtime image (declaration only; imports only kfp).

Optional inputs are passed only when set (``IfPresentPlaceholder``), so the
defaults stay in ``mindzoo.config.ExportConfig``. The step writes the executor
output itself (``{{$}}``): the ``model`` artifact is a pointer to the published
s3:// prefix (``mindzoo.kfp_io``: KFP copies input artifacts into each consuming pod,
so the files stay in mindzoo's store), with the location, format, input shape, size
in bytes, sha256, parity and the registered model version as metadata.
"""

from typing import Optional

from kfp import dsl

from components import images
from components.common import command, connection_flags, executor_input, flag


@dsl.container_component
def export(
    checkpoint: dsl.Input[dsl.Model],
    model: dsl.Output[dsl.Model],
    model_name: Optional[str] = None,
    num_classes: Optional[int] = None,
    input_size: Optional[int] = None,
    batch_size: Optional[int] = None,
    formats: Optional[str] = None,
    name: Optional[str] = None,
    output: Optional[str] = None,
    tolerance: Optional[float] = None,
    registered_model: Optional[str] = None,
    device: Optional[str] = None,
    s3_endpoint: Optional[str] = None,
    mlflow_uri: Optional[str] = None,
    cache_dir: Optional[str] = None,
):
    """Export a checkpoint to MindIR (+ ONNX where possible, AIR on Ascend), parity-check, publish, register.

    Args:
        checkpoint: train's `checkpoint` (a pointer to its s3:// prefix); in infer_pipeline locate's.
        model: The published export: a pointer to its s3:// prefix; metadata = location, format, input shape, size, sha256.
        model_name: Registered model name in mindzoo (default: recorded with the checkpoint).
        num_classes: Classes (default: recorded with the checkpoint).
        input_size: Input side in pixels (default: the checkpoint's).
        batch_size: Batch of the exported graph (default 1, as the 310 flow).
        formats: mindir,onnx,air or auto.
        name: File name stem (default: the model name).
        output: s3:// prefix to publish to (default: <run>/export).
        tolerance: Parity tolerance (max abs logit difference).
        registered_model: MLflow registered model name (default: the recipe's name).
        device: cpu | gpu | ascend (AIR needs ascend).
        s3_endpoint: Object store host:port (default: $MINDZOO_S3_ENDPOINT).
        mlflow_uri: MLflow tracking URI (default: $MLFLOW_TRACKING_URI).
        cache_dir: Local cache folder (a workspace or PVC path for ImageNet-sized data).
    """
    return dsl.ContainerSpec(
        image=images.CPU,
        command=command("export"),
        args=[
            "--checkpoint", checkpoint.uri,
            dsl.IfPresentPlaceholder(input_name="model_name", then=["--model", model_name]),
            flag("num_classes", num_classes),
            flag("input_size", input_size),
            flag("batch_size", batch_size),
            flag("formats", formats),
            flag("name", name),
            flag("output", output),
            flag("tolerance", tolerance),
            flag("registered_model", registered_model),
            flag("device", device),
            *connection_flags(s3_endpoint, mlflow_uri, cache_dir),
            *executor_input(),
        ],
    )
