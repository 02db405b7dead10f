"""The inference pipeline: (export →) infer310, from a training checkpoint or an exported/registered model.

With ``checkpoint`` set, the checkpoint is exported (MindIR, parity-checked,
registered) and that export is scored; otherwise ``model`` is scored as it is: an
export's s3:// prefix or a registered model, ``models:/<name>/<version>`` or
``models:/<name>@<alias>`` (resolved through the MLflow Model Registry). The
branches are one ``dsl.If/Else`` group merged by ``dsl.OneOf``, as in
train_pipeline, so the same YAML runs on a cluster and in kfp.local. The URIs
become artifacts through the ``locate`` step, not ``dsl.importer``
(components/locate/README.md says why).

Compile: ``mindzoo pipeline compile`` (or ``python pipelines/infer_pipeline.py OUT.yaml``).
"""

import sys
from pathlib import Path

if not __package__:  # run as a script: the repository's folders must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kfp import dsl  # noqa: E402

from components.export.component import export  # noqa: E402
from components.locate.component import locate_dataset, locate_model  # noqa: E402
from mindzoo.pipeline.config import PipelineConfig  # noqa: E402
from pipelines import tasks  # noqa: E402
from pipelines.train_pipeline import Outputs, infer_branches  # noqa: E402

NAME = "mindzoo-infer"


def build(cfg: PipelineConfig | None = None):  # noqa: ANN201 - a kfp GraphComponent
    """The pipeline for one cluster's settings (node pools, Secret, storage)."""
    cfg = cfg or PipelineConfig()
    cache = tasks.cache_dir(cfg)

    @dsl.pipeline(name=NAME, description="Export a checkpoint or take a registered model, and score it batch 1 "
                                         "over a validation set on Ascend 310/310P or CPU",
                  pipeline_config=tasks.pipeline_config(cfg))
    def infer_pipeline(
        data: str,
        checkpoint: str = "",
        model: str = "",
        infer_device: str = "cpu",
        split: str = "val",
        max_images: int = 0,
        registered_model: str = "",
        s3_endpoint: str = "",
        mlflow_uri: str = "",
    ) -> Outputs:
        """Score a model the way the recipes' Ascend 310 flow does.

        Args:
            data: Images: a converted dataset's s3:// prefix (`mindzoo preprocess` output).
            checkpoint: A training checkpoint's s3:// prefix (train's `checkpoint`): export it first.
            model: Without `checkpoint`: an export's s3:// prefix, models:/<name>/<version> or models:/<name>@<alias>.
            infer_device: cpu, ascend310 or ascend310p.
            split: Split of the dataset to score.
            max_images: Score at most this many images (0: all).
            registered_model: With `checkpoint`: the MLflow registered model name (default: the recipe's).
            s3_endpoint: Object store host:port (default: the pipeline-defaults ConfigMap's).
            mlflow_uri: MLflow tracking URI (default: the pipeline-defaults ConfigMap's).
        """
        conn = {"s3_endpoint": s3_endpoint, "mlflow_uri": mlflow_uri, **({"cache_dir": cache} if cache else {})}
        endpoints = {"s3_endpoint": s3_endpoint, "mlflow_uri": mlflow_uri}
        # No retries for locate: its errors (nothing published, an unknown version) stay errors, and its few
        # object-store calls retry transient failures themselves (mindzoo.storage).
        images = tasks.step(locate_dataset(uri=data, **endpoints), cfg, name="data")
        with dsl.If(checkpoint != "", name="from-checkpoint"):
            weights = tasks.step(locate_model(uri=checkpoint, kind="checkpoint", **endpoints), cfg,
                                 name="checkpoint")
            exported = tasks.step(export(checkpoint=weights.outputs["model"], registered_model=registered_model,
                                         **conn), cfg, io_bound=True)
        with dsl.Else(name="from-model"):
            given = tasks.step(locate_model(uri=model, **endpoints), cfg, name="model")
        chosen = dsl.OneOf(exported.outputs["model"], given.outputs["model"])
        return infer_branches(cfg, chosen, images.outputs["dataset"], infer_device, split=split,
                              max_images=max_images, **conn)

    return infer_pipeline


infer_pipeline = build()

if __name__ == "__main__":
    from kfp import compiler

    compiler.Compiler().compile(infer_pipeline, sys.argv[1] if len(sys.argv) > 1 else "infer_pipeline.yaml")
