"""KFP components: ``mindzoo train`` in the runtime image, and its distributed form (imports only kfp).

``train`` runs the training in the task's own pod (``workers`` data-parallel
processes on one node). ``train_distributed`` runs ``mindzoo launch train`` instead:
the task pod only creates an Indexed Job of ``nodes`` worker pods plus a headless
Service (``mindzoo.launcher``), follows rank 0's log, and fails with the failing
worker's log tail; the pods get the node pool of ``device`` from ``launch_pools``
(the pipeline compiles its pools into it).

Every optional input is passed only when set (``IfPresentPlaceholder``), so the
defaults stay where they are defined: ``mindzoo.config.TrainConfig`` and the
recipe YAML. Without a ``run_id`` the run is named after the pipeline run and
task, so a retried pod resumes from its last checkpoint instead of starting
over. The step writes the executor output itself (``{{$}}``): ``checkpoint`` is
a pointer to the published s3:// prefix of the final weights (metadata: location,
model, classes, input size, dataset hash, MLflow run), ``metrics`` carries the final
eval top-1/top-5/loss. Endpoints and credentials come from the environment.
"""

from typing import List, Optional

from kfp import dsl

from components import images
from components.common import command, connection_flags, executor_input, flag



def _train_args(dataset, model, recipe, set, output, run_id, workers, input_size, steps_per_epoch,  # noqa: A002
                checkpoint_every_steps, log_every, device, engine, mode, threads, data_workers,
                s3_endpoint, mlflow_uri, cache_dir, init_from) -> List[object]:
    return [
        "--dataset", dataset.uri,
        flag("model", model),
        flag("recipe", recipe),
        flag("set", set),
        flag("output", output),
        flag("run_id", run_id),  # default: the pipeline run's id + "-train", so a retried task resumes
        flag("workers", workers),
        flag("input_size", input_size),
        flag("steps_per_epoch", steps_per_epoch),
        flag("checkpoint_every_steps", checkpoint_every_steps),
        flag("log_every", log_every),
        flag("device", device),
        flag("engine", engine),
        flag("mode", mode),
        flag("threads", threads),
        flag("data_workers", data_workers),
        flag("init_from", init_from),
        *connection_flags(s3_endpoint, mlflow_uri, cache_dir),
    ]


@dsl.container_component
def train(
    dataset: dsl.Input[dsl.Dataset],
    checkpoint: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    model: Optional[str] = None,
    recipe: Optional[str] = None,
    set: Optional[str] = None,  # noqa: A002 - the CLI flag's name
    output: Optional[str] = None,
    run_id: Optional[str] = None,
    workers: Optional[int] = None,
    input_size: Optional[int] = None,
    steps_per_epoch: Optional[int] = None,
    checkpoint_every_steps: Optional[int] = None,
    log_every: Optional[int] = None,
    device: Optional[str] = None,
    engine: Optional[str] = None,
    mode: Optional[str] = None,
    threads: Optional[int] = None,
    data_workers: Optional[int] = None,
    s3_endpoint: Optional[str] = None,
    mlflow_uri: Optional[str] = None,
    cache_dir: Optional[str] = None,
    init_from: Optional[str] = None,
):
    """Train a registered model with its ModelZoo recipe on a preprocessed dataset; resumes after a restart.

    Args:
        dataset: The preprocess step's Dataset (a pointer to the published s3:// prefix).
        checkpoint: The final weights: a pointer to their published s3:// prefix; metadata = location, identity, results.
        metrics: Final top1, top5, loss (eval) and train_loss, steps, epochs.
        model: Registered model (default: the recipe's model).
        recipe: Recipe name or YAML path inside the image (default: the recipe named after the model).
        set: Recipe overrides, comma-separated `key=value` (e.g. `epochs=3,batch_size=32`).
        output: s3:// root of training runs (default s3://mindzoo/runs).
        run_id: Run id; the same id resumes (default in a pipeline: `<KFP run id>-train`, so a retry resumes).
        workers: Data-parallel worker processes in this pod (one per device on GPU/Ascend).
        input_size: Input side in pixels (0: the recipe's).
        steps_per_epoch: Cap on steps per epoch.
        checkpoint_every_steps: Also checkpoint every N steps.
        log_every: Progress line every N steps.
        device: cpu, gpu or ascend (the pipeline gives the task the matching image and node pool).
        engine: mindspore or torch.
        mode: graph or pynative.
        threads: CPU kernel threads per process.
        data_workers: Input pipeline threads per process.
        s3_endpoint: Object store host:port (default: $MINDZOO_S3_ENDPOINT).
        mlflow_uri: MLflow tracking URI (default: $MLFLOW_TRACKING_URI).
        cache_dir: Local dataset cache (a workspace or PVC path for ImageNet-sized data).
        init_from: Start from these weights (models:/<name>/<version>, a checkpoint prefix or .ckpt; '' for none).
    """
    return dsl.ContainerSpec(
        image=images.CPU,
        command=command("train"),
        args=[*_train_args(dataset, model, recipe, set, output, run_id, workers, input_size, steps_per_epoch,
                           checkpoint_every_steps, log_every, device, engine, mode, threads, data_workers,
                           s3_endpoint, mlflow_uri, cache_dir, init_from), *executor_input()],
    )


@dsl.container_component
def train_distributed(
    dataset: dsl.Input[dsl.Dataset],
    checkpoint: dsl.Output[dsl.Model],
    metrics: dsl.Output[dsl.Metrics],
    nodes: int,
    launch_pools: str,
    s3_secret: str,
    s3_access_key_key: Optional[str] = None,
    s3_secret_key_key: Optional[str] = None,
    service_account: Optional[str] = None,
    launch_timeout: Optional[int] = None,
    launch_cpu: Optional[str] = None,
    launch_memory: Optional[str] = None,
    launch_kind: Optional[str] = None,
    launch_queue: Optional[str] = None,
    model: Optional[str] = None,
    recipe: Optional[str] = None,
    set: Optional[str] = None,  # noqa: A002 - the CLI flag's name
    output: Optional[str] = None,
    run_id: Optional[str] = None,
    workers: Optional[int] = None,
    input_size: Optional[int] = None,
    steps_per_epoch: Optional[int] = None,
    checkpoint_every_steps: Optional[int] = None,
    log_every: Optional[int] = None,
    device: Optional[str] = None,
    engine: Optional[str] = None,
    mode: Optional[str] = None,
    threads: Optional[int] = None,
    data_workers: Optional[int] = None,
    s3_endpoint: Optional[str] = None,
    mlflow_uri: Optional[str] = None,
    cache_dir: Optional[str] = None,
    init_from: Optional[str] = None,
):
    """Train on `nodes` pods of an Indexed Job or a TrainJob (MindSpore dynamic cluster; pod 0 hosts the scheduler).

    Args:
        dataset: The preprocess step's Dataset.
        checkpoint: The final weights (rank 0's), as `train`'s.
        metrics: Final metrics, as `train`'s.
        nodes: Worker pods; each runs `workers` processes (one per device).
        launch_pools: JSON {device: {image, resource, node_selector, tolerations}} of the worker pods.
        s3_secret: Secret with the object store keys, mapped to AWS_* in the worker pods.
        s3_access_key_key: Key of the access key in that Secret.
        s3_secret_key_key: Key of the secret key in that Secret.
        service_account: ServiceAccount of the worker pods.
        launch_timeout: Seconds the Job may run.
        launch_cpu: CPU request of each worker pod.
        launch_memory: Memory request and limit of each worker pod.
        launch_kind: job (an Indexed Job + headless Service) or trainjob (a Kubeflow Trainer v2.3.0 TrainJob).
        launch_queue: Kueue LocalQueue of the workers (the kueue.x-k8s.io/queue-name label); empty: none.
        model: See `train`.
        recipe: See `train`.
        set: See `train`.
        output: See `train`.
        run_id: See `train`.
        workers: Worker processes per pod (devices per node).
        input_size: See `train`.
        steps_per_epoch: See `train`.
        checkpoint_every_steps: See `train`.
        log_every: See `train`.
        device: cpu, gpu or ascend: picks the pool and image of the worker pods.
        engine: See `train`.
        mode: See `train`.
        threads: See `train`.
        data_workers: See `train`.
        s3_endpoint: See `train`.
        mlflow_uri: See `train`.
        cache_dir: See `train`.
        init_from: See `train`.
    """
    return dsl.ContainerSpec(
        image=images.CPU,
        # The launcher's fallback worker image (a pool without one) is the image this pod runs.
        command=[*command("launch")[:-2], f"MINDZOO_IMAGE_REF={images.CPU}", "mindzoo", "launch", "train"],
        args=[
            *_train_args(dataset, model, recipe, set, output, run_id, workers, input_size, steps_per_epoch,
                         checkpoint_every_steps, log_every, device, engine, mode, threads, data_workers,
                         s3_endpoint, mlflow_uri, cache_dir, init_from),
            "--launch-nodes", nodes,
            "--launch-pools", launch_pools,
            "--launch-s3-secret", s3_secret,
            flag("s3_access_key_key", s3_access_key_key, "--launch-s3-access-key-key"),
            flag("s3_secret_key_key", s3_secret_key_key, "--launch-s3-secret-key-key"),
            flag("service_account", service_account, "--launch-service-account"),
            flag("launch_timeout", launch_timeout, "--launch-timeout"),
            flag("launch_cpu", launch_cpu, "--launch-cpu"),
            flag("launch_memory", launch_memory, "--launch-memory"),
            flag("launch_kind", launch_kind, "--launch-kind"),
            flag("launch_queue", launch_queue, "--launch-queue"),
            *executor_input(),
        ],
    )
