"""KFP components: ``mindzoo locate`` in the runtime image (declarations only; imports only kfp).

A URI given as a pipeline parameter becomes the pointer artifact the next step takes, instead of a
``dsl.importer``: KFP's launcher would download an imported prefix into every consuming pod, its importer
refuses ``models:/`` URIs, and KFP 2.17's driver cannot resolve a ``dsl.OneOf`` over an importer's output.
The step checks that the URI names something published (its MANIFEST.json), resolves a registered version
to its export's prefix, and writes the pointer with the location, version, file count and size as metadata.
One declaration per artifact type, so the consumers' inputs stay typed (``Dataset``, ``Model``).
"""

from typing import Optional

from kfp import dsl

from components import images
from components.common import command, executor_input, flag


def _args(uri: str, kind: object, s3_endpoint: Optional[str], mlflow_uri: Optional[str]) -> list:
    return ["--uri", uri, *kind, flag("s3_endpoint", s3_endpoint, "--storage-endpoint"),
            flag("mlflow_uri", mlflow_uri, "--tracking-uri"), *executor_input()]


@dsl.container_component
def locate_dataset(
    uri: str,
    dataset: dsl.Output[dsl.Dataset],
    s3_endpoint: Optional[str] = None,
    mlflow_uri: Optional[str] = None,
):
    """A converted dataset's s3:// prefix (`mindzoo preprocess` output) as a Dataset pointer.

    Args:
        uri: The dataset's s3:// prefix.
        dataset: A pointer to the prefix; metadata = location, kind, version, files, size_bytes.
        s3_endpoint: Object store host:port (default: $MINDZOO_S3_ENDPOINT).
        mlflow_uri: MLflow tracking URI (default: $MLFLOW_TRACKING_URI).
    """
    return dsl.ContainerSpec(image=images.CPU, command=command("locate"),
                             args=_args(uri, ["--kind", "dataset"], s3_endpoint, mlflow_uri))


@dsl.container_component
def locate_model(
    uri: str,
    model: dsl.Output[dsl.Model],
    kind: Optional[str] = None,
    s3_endpoint: Optional[str] = None,
    mlflow_uri: Optional[str] = None,
):
    """A checkpoint's or an export's s3:// prefix, or a registered version (models:/...), as a Model pointer.

    Args:
        uri: kind=model: an export's s3:// prefix, models:/<name>/<version> or models:/<name>@<alias>;
            kind=checkpoint: a training checkpoint's s3:// prefix (train's `checkpoint`).
        model: A pointer to the prefix (a registered version: its export's); metadata = location, kind, version,
            files, size_bytes (and registered_model).
        kind: model (default) or checkpoint.
        s3_endpoint: Object store host:port (default: $MINDZOO_S3_ENDPOINT).
        mlflow_uri: MLflow tracking URI (default: $MLFLOW_TRACKING_URI).
    """
    return dsl.ContainerSpec(image=images.CPU, command=command("locate"),
                             args=_args(uri, [flag("kind", kind)], s3_endpoint, mlflow_uri))
