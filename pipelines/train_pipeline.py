"""The training pipeline: preprocess → train → evaluate (accuracy gate) → export → infer310.

The device is a run parameter. KFP cannot set a task's image, node selector or
tolerations from a parameter's value (kfp-kubernetes takes them at compile time),
so each device is its own branch of one ``dsl.If/Elif/Else`` group and
``dsl.OneOf`` hands the branch that ran to the next step. The same compiled YAML
runs on a cluster (Argo runs one branch) and in kfp.local (its DAG orchestrator
supports conditions and OneOf since kfp 2.16/2.17). ``nodes > 1`` takes the
distributed branch: the task launches an Indexed Job of worker pods on the
device's pool (``mindzoo launch train``).

Compile: ``mindzoo pipeline compile`` (or ``python pipelines/train_pipeline.py OUT.yaml``).
"""

import sys
from pathlib import Path
from typing import NamedTuple

if not __package__:  # run as a script: the repository's folders must be importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kfp import dsl  # noqa: E402

from components import images  # noqa: E402
from components.evaluate.component import evaluate  # noqa: E402
from components.export.component import export  # noqa: E402
from components.infer310.component import infer310  # noqa: E402
from components.preprocess.component import preprocess  # noqa: E402
from components.train.component import train, train_distributed  # noqa: E402
from mindzoo.pipeline.config import PipelineConfig  # noqa: E402
from pipelines import tasks  # noqa: E402

NAME = "mindzoo-train"
Outputs = NamedTuple("Outputs", [("metrics", dsl.Metrics), ("results", dsl.Artifact)])


def infer_branches(cfg: PipelineConfig, model: object, data: object, infer_device: object,
                   **kw: object) -> Outputs:
    """infer310 on the 310 pool, the 310P pool or a CPU node, by ``infer_device``."""
    branch = []
    with dsl.If(infer_device == "ascend310", name="infer-ascend310"):
        branch.append(tasks.on_pool(infer310(model=model, data=data, device="ascend310", **kw), cfg,
                                      "ascend310", 1, images.ASCEND))
    with dsl.Elif(infer_device == "ascend310p", name="infer-ascend310p"):
        branch.append(tasks.on_pool(infer310(model=model, data=data, device="ascend310p", **kw), cfg,
                                      "ascend310p", 1, images.ASCEND))
    with dsl.Else(name="infer-cpu"):
        branch.append(infer310(model=model, data=data, device="cpu", **kw))
    for task in branch:
        tasks.step(task, cfg, io_bound=True, name="infer310")
    return Outputs(dsl.OneOf(*(t.outputs["metrics"] for t in branch)),
                   dsl.OneOf(*(t.outputs["results"] for t in branch)))


def build(cfg: PipelineConfig | None = None):  # noqa: ANN201 - a kfp GraphComponent
    """The pipeline for one cluster's settings (node pools, Secret, storage)."""
    cfg = cfg or PipelineConfig()
    cache = tasks.cache_dir(cfg)

    @dsl.pipeline(name=NAME, description="MindSpore ModelZoo recipe: preprocess, train on CPU/GPU/Ascend, "
                                         "evaluate with a gate, export MindIR, Ascend 310-style inference",
                  pipeline_config=tasks.pipeline_config(cfg))
    def train_pipeline(
        source: str,
        recipe: str = "resnet50_bam",
        model: str = "",
        overrides: str = "",
        device: str = "cpu",
        engine: str = "mindspore",
        workers: int = 1,
        nodes: int = 1,
        launch_kind: str = "job",
        launch_queue: str = "",
        input_size: int = 0,
        steps_per_epoch: int = 0,
        min_top1: float = 0.0,
        infer_device: str = "cpu",
        infer_max_images: int = 0,
        datasets_root: str = "s3://mindzoo/datasets",
        runs_root: str = "s3://mindzoo/runs",
        registered_model: str = "",
        init_from: str = "",
        s3_endpoint: str = "",
        mlflow_uri: str = "",
    ) -> Outputs:
        """Train a ModelZoo recipe and check it end to end.

        Args:
            source: Raw dataset: an s3:// prefix (CIFAR-10 binaries, an ImageNet train/val tree, a flat val folder).
            recipe: Recipe to train (src/mindzoo/recipes), e.g. resnet50_bam, googlenet_cifar10, inception_v4.
            model: Registered model (default: the recipe's).
            overrides: Recipe overrides, comma-separated key=value (e.g. epochs=3,batch_size=64).
            device: cpu, gpu or ascend (Ascend 910): the train task's node pool and image.
            engine: mindspore, or torch (cpu and gpu only): which framework trains. Either checkpoint feeds
                export (MindIR) and inference.
            workers: Worker processes per node: devices per node on GPU/Ascend, CPU processes on CPU.
            nodes: Nodes; more than 1 launches an Indexed Job of worker pods (MindSpore dynamic cluster).
            launch_kind: With nodes > 1: job (an Indexed Job, nothing to install) or trainjob (Kubeflow Trainer).
            launch_queue: With nodes > 1: the Kueue LocalQueue of the worker pods; empty: none.
            input_size: Input side in pixels (0: the recipe's).
            steps_per_epoch: Cap on steps per epoch (0: the whole split); for smoke runs.
            min_top1: Evaluate gate: the pipeline stops before export below this top-1 (0..1).
            infer_device: cpu, ascend310 or ascend310p: the inference task's node pool.
            infer_max_images: Score at most this many images in inference (0: all).
            datasets_root: s3:// root of converted datasets.
            runs_root: s3:// root of training runs (checkpoints, exports).
            registered_model: MLflow registered model name (default: the recipe's).
            init_from: Fine-tune from these weights: models:/<name>/<version>, a checkpoint prefix or a .ckpt
                (mindzoo or ModelZoo names); empty trains from scratch.
            s3_endpoint: Object store host:port (default: the pipeline-defaults ConfigMap's).
            mlflow_uri: MLflow tracking URI (default: the pipeline-defaults ConfigMap's).
        """
        conn = {"s3_endpoint": s3_endpoint, "mlflow_uri": mlflow_uri, **({"cache_dir": cache} if cache else {})}
        prep = tasks.step(preprocess(source=source, output=datasets_root, **conn), cfg, io_bound=True,
                             cached=False)
        data = prep.outputs["dataset"]
        run = {"dataset": data, "recipe": recipe, "model": model, "set": overrides, "output": runs_root,
               "engine": engine, "workers": workers, "input_size": input_size, "steps_per_epoch": steps_per_epoch,
               "init_from": init_from, **conn}
        with dsl.If(nodes > 1, name="train-distributed"):
            launched = train_distributed(
                nodes=nodes, device=device, launch_pools=tasks.launch_pools(cfg), s3_secret=cfg.s3_secret,
                s3_access_key_key=cfg.s3_access_key_key, s3_secret_key_key=cfg.s3_secret_key_key,
                launch_timeout=cfg.launch_timeout, launch_kind=launch_kind, launch_queue=launch_queue,
                **({"service_account": cfg.worker_service_account} if cfg.worker_service_account else {}),
                **({"launch_cpu": cfg.worker_cpu} if cfg.worker_cpu else {}),
                **({"launch_memory": cfg.worker_memory} if cfg.worker_memory else {}), **run)
        with dsl.Elif(device == "ascend", name="train-ascend"):
            ascend = tasks.on_pool(train(device="ascend", **run), cfg, "ascend910", workers, images.ASCEND)
        with dsl.Elif(device == "gpu", name="train-gpu"):
            gpu = tasks.on_pool(train(device="gpu", **run), cfg, "gpu", workers, images.GPU)
        with dsl.Else(name="train-cpu"):
            cpu = train(device="cpu", **run)
        for task in (launched, ascend, gpu, cpu):
            tasks.step(task, cfg, resumes=True, name="train")
        checkpoint = dsl.OneOf(*(t.outputs["checkpoint"] for t in (launched, ascend, gpu, cpu)))
        gate = tasks.step(evaluate(checkpoint=checkpoint, dataset=data, min_top1=min_top1, **conn), cfg)
        exported = tasks.step(export(checkpoint=checkpoint, registered_model=registered_model, **conn), cfg,
                                 io_bound=True).after(gate)
        return infer_branches(cfg, exported.outputs["model"], data, infer_device, max_images=infer_max_images,
                              **conn)

    return train_pipeline


train_pipeline = build()

if __name__ == "__main__":
    from kfp import compiler

    compiler.Compiler().compile(train_pipeline, sys.argv[1] if len(sys.argv) > 1 else "train_pipeline.yaml")
