"""What every component shares: its command line, optional flags, endpoints (imports only kfp).

``command(step)`` runs ``mindzoo STEP`` through ``env`` so that the step's MLflow run is
tagged with the KFP run it belongs to under kfp.local (``MINDZOO_LOCAL_PIPELINE_RUN_ID``, read by
``mindzoo.runs.layout``; on a KFP backend the pod's label gives it) and, where ``components/images.py`` pins the images, learns
their digests (``MINDZOO_IMAGE_DIGESTS``): KFP resolves placeholders in the command line, not in
environment variables. The image's ENTRYPOINT is ``mindzoo``; Kubernetes replaces it
with this command, and ``mindzoo pipeline run-local`` resets it for kfp.local.
"""

from typing import List

from kfp import dsl

from components import images

# Tags every MLflow run of a step with the KFP run id under kfp.local, which resolves the placeholder in
# the command line (a KFP backend leaves it as it is there: its pods get the id from their `pipeline/runid`
# label instead, and that wins; mindzoo.runs.layout), and, when the images are pinned at compile time,
# tells the step their digests (it records the one it runs in).
RUN_ID_ENV = ["env", f"MINDZOO_LOCAL_PIPELINE_RUN_ID={dsl.PIPELINE_JOB_ID_PLACEHOLDER}",
              *([f"MINDZOO_IMAGE_DIGESTS={images.STEP_DIGESTS}"] if images.STEP_DIGESTS else [])]

# Optional inputs every step has: where the object store and MLflow are (empty: the
# environment, i.e. the chart's pipeline-defaults ConfigMap) and a local cache folder
# (a workspace or PVC path for ImageNet-sized data).
CONNECTION_INPUTS = (("s3_endpoint", "--storage-endpoint"), ("mlflow_uri", "--tracking-uri"),
                     ("cache_dir", "--cache-dir"))


def command(step: str) -> List[str]:
    return [*RUN_ID_ENV, "mindzoo", step]


def flag(name: str, value: object, cli_flag: str = "") -> dsl.IfPresentPlaceholder:
    """``--name value`` only when the input is set, so defaults stay in mindzoo's config dataclasses."""
    return dsl.IfPresentPlaceholder(input_name=name, then=[cli_flag or f"--{name.replace('_', '-')}", value])


def connection_flags(s3_endpoint: object, mlflow_uri: object, cache_dir: object) -> List[dsl.IfPresentPlaceholder]:
    values = {"s3_endpoint": s3_endpoint, "mlflow_uri": mlflow_uri, "cache_dir": cache_dir}
    return [flag(name, values[name], cli_flag) for name, cli_flag in CONNECTION_INPUTS]


def executor_input() -> List[str]:
    """The KFP executor input: the step writes its output artifacts' URIs and metadata back."""
    return ["--executor-input", dsl.PIPELINE_TASK_EXECUTOR_INPUT_PLACEHOLDER]
