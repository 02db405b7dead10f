"""Config dataclasses of the `mindzoo pipeline` and `mindzoo launch` commands (see mindzoo.config).

They live beside the code that reads them rather than in ``mindzoo.config`` to keep that
module within size; the mechanism is the same (``configkit``: flags derive from the
fields, errors name dotted keys such as ``pipeline.gpu_selector``).

Compile-time settings (where the Secret is, how node pools are reached) shape the
compiled YAML; per-run values (model, device, nodes, ...) are pipeline parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mindzoo.config import _join_overrides
from mindzoo.configkit import check, option, secret
from mindzoo.datasets import DIGITS_TRAINING
from mindzoo.errors import ConfigError
from mindzoo.launcher.spec import KINDS

DEVICES = ("cpu", "gpu", "ascend")
ENGINES = ("mindspore", "torch")
INFER_DEVICES = ("cpu", "ascend310", "ascend310p")
POOLS = ("ascend910", "ascend310", "ascend310p", "gpu")
_SIZE = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_CPU = re.compile(r"^[0-9]+(\.[0-9]+)?m?$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class NodePool:
    """How a device pool is reached: the device plugin's resource, a node label, a taint to tolerate."""

    resource: str
    selector: tuple[str, str] | None  # (label key, value)
    taint: str  # tolerated with operator Exists, effect NoSchedule; "" tolerates nothing

    def as_json(self, count: int = 1) -> dict[str, object]:
        return {"resource": self.resource, "count": count,
                "node_selector": dict([self.selector]) if self.selector else {},
                "tolerations": [self.taint] if self.taint else []}


@dataclass(frozen=True)
class PipelineConfig:
    """How `mindzoo pipeline compile` shapes the pipelines for a cluster (baked into the YAML)."""

    s3_secret: str = option("mindzoo-minio-tasks", help="Secret holding the object store's keys (the chart's "
                            "scoped <release>-minio-tasks; KFP's own: mlpipeline-minio-artifact)")
    s3_access_key_key: str = option("accesskey", help="Key of the access key in that Secret")
    s3_secret_key_key: str = option("secretkey", help="Key of the secret key in that Secret")
    mlflow_secret: str = option("mindzoo-mlflow-auth", help="Secret with MLflow basic-auth credentials (keys "
                                "username, password; the chart's <release>-mlflow-auth with mlflow.auth on); "
                                "optional: without it tasks call MLflow anonymously. '' leaves it out")
    defaults_config_map: str = option("mindzoo-pipeline-defaults", help="ConfigMap of endpoints (the chart's "
                                      "<release>-pipeline-defaults; optional: tasks start without it)")
    ascend910_resource: str = option("huawei.com/Ascend910", help="Extended resource of Ascend 910 training")
    ascend910_selector: str = option("accelerator=huawei-Ascend910", help="Node label (key=value) of 910 nodes")
    ascend910_taint: str = option("huawei.com/Ascend910", help="Taint key tolerated on 910 nodes ('' for none)")
    ascend310_resource: str = option("huawei.com/Ascend310", help="Extended resource of Ascend 310 inference")
    ascend310_selector: str = option("accelerator=huawei-Ascend310", help="Node label of 310 nodes")
    ascend310_taint: str = option("huawei.com/Ascend310", help="Taint key tolerated on 310 nodes")
    ascend310p_resource: str = option("huawei.com/Ascend310P", help="Extended resource of Ascend 310P inference")
    ascend310p_selector: str = option("accelerator=huawei-Ascend310P", help="Node label of 310P nodes")
    ascend310p_taint: str = option("huawei.com/Ascend310P", help="Taint key tolerated on 310P nodes")
    gpu_resource: str = option("nvidia.com/gpu", help="Extended resource of GPU training")
    gpu_selector: str = option("nvidia.com/gpu.present=true", help="Node label of GPU nodes (NVIDIA GPU Feature "
                                                                    "Discovery's)")
    gpu_taint: str = option("nvidia.com/gpu", help="Taint key tolerated on GPU nodes")
    retries: int = option(2, help="Retries of the I/O-bound steps (preprocess, export, infer) and of train "
                                  "(a retried train resumes its run)")
    workspace_size: str = option("", help="Give each run a KFP workspace PVC of this size (e.g. 500Gi) used as "
                                          "the steps' cache: the dataset is fetched once per run, not per step")
    data_pvc: str = option("", help="Mount this existing PVC at /mnt/mindzoo in every step as the cache "
                                    "(shared across runs; ReadWriteMany)")
    worker_service_account: str = option("", help="ServiceAccount of the distributed launcher's worker pods "
                                           "(default: the namespace's default)")
    launch_timeout: int = option(7 * 24 * 3600, help="Seconds a distributed training may run")
    worker_cpu: str = option("", help="CPU request of each distributed worker pod, e.g. 500m (default: the "
                                      "launcher's, `mindzoo launch train --help`)")
    worker_memory: str = option("", help="Memory request and limit of each distributed worker pod, e.g. 3Gi "
                                         "(default: the launcher's)")

    def __post_init__(self) -> None:
        for key in ("s3_secret", "defaults_config_map"):
            check(bool(_NAME.match(getattr(self, key))), key, f"not a Kubernetes name: {getattr(self, key)!r}")
        check(not self.mlflow_secret or bool(_NAME.match(self.mlflow_secret)), "mlflow_secret",
              f"not a Kubernetes name: {self.mlflow_secret!r}")
        check(bool(self.s3_access_key_key and self.s3_secret_key_key), "s3_access_key_key", "must not be empty")
        for name in POOLS:
            check(bool(getattr(self, f"{name}_resource").strip()), f"{name}_resource", "must not be empty")
            selector = getattr(self, f"{name}_selector")
            check(not selector or ("=" in selector and bool(_LABEL_KEY.match(selector.split("=", 1)[0]))),
                  f"{name}_selector", f"expected label-key=value or '' (got {selector!r})")
        check(0 <= self.retries <= 10, "retries", "must be in 0..10")
        check(not self.workspace_size or bool(_SIZE.match(self.workspace_size)), "workspace_size",
              f"expected a Kubernetes quantity such as 500Gi (got {self.workspace_size!r})")
        check(not (self.workspace_size and self.data_pvc), "data_pvc", "give --workspace-size or --data-pvc, not both")
        check(not self.data_pvc or bool(_NAME.match(self.data_pvc)), "data_pvc", "not a Kubernetes name")
        check(self.launch_timeout > 0, "launch_timeout", "must be > 0")
        check(not self.worker_cpu or bool(_CPU.match(self.worker_cpu)), "worker_cpu",
              f"expected a CPU quantity such as 2 or 500m (got {self.worker_cpu!r})")
        check(not self.worker_memory or bool(_SIZE.match(self.worker_memory)), "worker_memory",
              f"expected a Kubernetes quantity such as 8Gi (got {self.worker_memory!r})")

    def pool(self, name: str) -> NodePool:
        """One node pool (``ascend910``, ``ascend310``, ``ascend310p``, ``gpu``)."""
        selector = getattr(self, f"{name}_selector")
        return NodePool(getattr(self, f"{name}_resource"),
                        tuple(selector.split("=", 1)) if selector else None,  # type: ignore[arg-type]
                        getattr(self, f"{name}_taint"))


def check_run_parameters(items: tuple[str, ...]) -> None:
    """Refuse, before anything is submitted, parameter values the tasks would only reject in a pod.

    KFP checks a parameter's type, not its value: a run with ``engine=torch`` on Ascend would start,
    preprocess, then fail in the train pod. Only the choices that pick branches and images are checked
    here; the steps check everything else themselves.
    """
    values = {k.strip(): v.strip() for k, v in (item.split("=", 1) for item in items)}
    for key, allowed in (("engine", ENGINES), ("device", DEVICES), ("infer_device", INFER_DEVICES),
                         ("launch_kind", KINDS)):
        check(key not in values or values[key] in allowed, "param",
              f"{key} must be one of {', '.join(allowed)} (got {values.get(key)!r})")
    check(not (values.get("engine") == "torch" and values.get("device") == "ascend"), "param",
          "engine=torch cannot train on device=ascend (the torch engine trains on cpu or gpu; use engine=mindspore)")


@dataclass(frozen=True)
class CompileConfig:
    """`mindzoo pipeline compile`: one IR YAML per pipeline."""

    output: str = option("pipelines/compiled", help="Folder to write <pipeline>.yaml files to")
    pipelines: tuple[str, ...] = option(("train", "infer"), help="Which pipelines (train,infer)")

    def __post_init__(self) -> None:
        check(bool(self.output.strip()), "output", "must not be empty")
        for name in self.pipelines:
            check(name in ("train", "infer"), "pipelines", f"unknown pipeline {name!r}; use train or infer")


@dataclass(frozen=True)
class SubmitConfig:
    """`mindzoo pipeline submit`: start a run on a Kubeflow Pipelines server."""

    package: str = option("train", help="Compiled pipeline YAML, or `train`/`infer` to compile one now")
    host: str = option("", help="KFP API endpoint (default: $KF_PIPELINES_ENDPOINT, then in-cluster discovery)")
    namespace: str = option("", help="Profile namespace of a multi-user KFP (default: the server's)")
    experiment: str = option("mindzoo", help="Experiment to run in (created when missing)")
    run_name: str = option("", help="Run name (default: pipeline name and time)")
    param: tuple[str, ...] = option((), help="Pipeline parameter key=value (repeatable; comma-separated)")
    pipeline_root: str = option("", help="Where KFP keeps this run's artifacts (default: the kfp-launcher "
                                         "ConfigMap's defaultPipelineRoot)")
    service_account: str = option("", help="ServiceAccount the run's pods use (the chart's <release>-pipeline)")
    cache: bool = option(False, help="Let KFP reuse every task whose inputs equal an earlier run's (its cache key "
                                     "is the parameters and input artifacts, not the files behind an s3:// "
                                     "prefix: changed files under the same source are reused stale). Off: the "
                                     "compiled pipeline caches no task")
    wait: bool = option(False, help="Wait for the run to finish and fail unless it succeeded")
    timeout: int = option(24 * 3600, help="Seconds --wait waits")
    token: str = secret(help="$KF_PIPELINES_TOKEN: bearer token (multi-user KFP)")

    def __post_init__(self) -> None:
        check(bool(self.package.strip()), "package", "must not be empty")
        check(bool(self.experiment.strip()), "experiment", "must not be empty")
        object.__setattr__(self, "param", _join_overrides(self.param))
        for item in self.param:
            check("=" in item and bool(item.split("=", 1)[0].strip()), "param", f"expected key=value (got {item!r})")
        check_run_parameters(self.param)
        check(self.timeout > 0, "timeout", "must be > 0")
        check("://" in self.host or not self.host, "host",
              f"give a URL such as http://localhost:8080 (got {self.host!r})")

    def arguments(self) -> dict[str, str]:
        return {k.strip(): v for k, v in (item.split("=", 1) for item in self.param)}


@dataclass(frozen=True)
class RunLocalConfig:
    """`mindzoo pipeline run-local`: a compiled pipeline through kfp.local + the local container engine."""

    pipeline: Literal["train", "infer"] = option("train", help="train: the whole pipeline on --source (the "
                                                 "options below); infer: infer_pipeline, its parameters from --param")
    source: str = option("", help="Raw dataset visible to the tasks (s3:// prefix or a folder under --root); "
                                  "default: the bundled digits, written as CIFAR-10 binaries")
    recipe: str = option(DIGITS_TRAINING.recipe, help="Recipe to train")
    input_size: int = option(DIGITS_TRAINING.input_size, help="Input side in pixels (16 trains digits in minutes "
                                                               "on a CPU)")
    set: tuple[str, ...] = option(DIGITS_TRAINING.overrides(), help="Recipe overrides key=value (comma-separated)")
    workers: int = option(1, help="Data-parallel worker processes in the train task")
    min_top1: float = option(0.8, help="Evaluate gate: stop before export below this top-1")
    param: tuple[str, ...] = option((), help="Any other pipeline parameter key=value (repeatable)")
    root: str = option("", help="Local pipeline root, made writable for the tasks' non-root user (default: "
                                "<state dir>/pipeline-runs/<time>, or /var/tmp/mindzoo-<uid>/pipeline-runs/<time> "
                                "when the state dir is under /root, private in the image)")

    def __post_init__(self) -> None:
        check(self.input_size == 0 or self.input_size >= 8, "input_size", "must be 0 (the recipe's) or >= 8")
        check(1 <= self.workers <= 64, "workers", "must be in 1..64")
        check(0.0 <= self.min_top1 <= 1.0, "min_top1", "must be in [0, 1]")
        object.__setattr__(self, "set", _join_overrides(self.set))
        object.__setattr__(self, "param", _join_overrides(self.param))
        for key in ("set", "param"):
            for item in getattr(self, key):
                check("=" in item and bool(item.split("=", 1)[0].strip()), key, f"expected key=value (got {item!r})")
        check_run_parameters(self.param)

    def arguments(self) -> dict[str, str]:
        return {k.strip(): v for k, v in (item.split("=", 1) for item in self.param)}


@dataclass(frozen=True)
class LaunchConfig:
    """`mindzoo launch train`: the distributed launcher's own settings (the train flags are TrainConfig's)."""

    nodes: int = option(1, help="Pods (nodes) of the Indexed Job; each runs --workers worker processes")
    device: str = option("", help="Pool of --launch-pools to use: cpu, gpu or ascend (default: --device)")
    pools: str = option("{}", help="JSON {device: {image, resource, node_selector, tolerations}}; the pipeline "
                                   "passes its compiled node pools")
    image: str = option("", help="Worker image (default: the pool's, else this pod's $MINDZOO_IMAGE_REF)")
    namespace: str = option("", help="Namespace of the Job (default: this pod's, else the kubeconfig context's, "
                                        "else `default`)")
    service_account: str = option("", help="ServiceAccount of the worker pods")
    s3_secret: str = option("", help="Secret holding the object store keys; workers get them as AWS_* env vars")
    s3_access_key_key: str = option("accesskey", help="Key of the access key in --launch-s3-secret")
    s3_secret_key_key: str = option("secretkey", help="Key of the secret key in --launch-s3-secret")
    cpu: str = option("2", help="CPU request of each worker pod")
    memory: str = option("8Gi", help="Memory request and limit of each worker pod")
    port: int = option(8118, help="Rendezvous port of the MindSpore scheduler on pod 0 (a trainjob's runtime "
                                  "sets its own: the chart's trainer.runtimes.port)")
    timeout: int = option(7 * 24 * 3600, help="Seconds the Job or TrainJob may run (then it is stopped and the "
                                              "step fails)")
    keep: bool = option(False, help="Keep the Job and its pods after the end (TTL still removes them)")
    labels: tuple[str, ...] = option((), help="Extra worker pod labels key=value (cost allocation)")
    max_disruptions: int = option(3, help="Worker pods disrupted (evicted, preempted, node drained) that are "
                                          "replaced before the launch fails; a worker's own error fails it at once")
    kind: str = option("job", help="What runs the workers: job (an Indexed Job + headless Service, nothing to "
                                   "install) or trainjob (a Kubeflow Trainer v2.3.0 TrainJob)")
    runtime: str = option("", help="ClusterTrainingRuntime of a trainjob (default: the chart's for --engine, "
                                   "mindzoo-mindspore or mindzoo-torch)")
    queue: str = option("", help="Kueue LocalQueue: labels the Job or TrainJob (and the worker pods) with "
                                 "kueue.x-k8s.io/queue-name")

    def __post_init__(self) -> None:
        check(1 <= self.nodes <= 512, "nodes", "must be in 1..512")
        check(self.kind in KINDS, "kind", f"must be one of {', '.join(KINDS)} (got {self.kind!r})")
        check(self.device in ("", *DEVICES), "device", f"must be one of {', '.join(DEVICES)} (got {self.device!r})")
        check(1024 <= self.port <= 65535, "port", "must be in 1024..65535")
        check(self.timeout > 0, "timeout", "must be > 0")
        check(0 <= self.max_disruptions <= 100, "max_disruptions", "must be in 0..100")
        for item in self.labels:
            check("=" in item and bool(item.split("=", 1)[0]), "labels", f"expected key=value (got {item!r})")
        import json

        try:
            pools = json.loads(self.pools)
        except ValueError as err:
            raise ConfigError("pools", f"not JSON: {err}") from None
        check(isinstance(pools, dict) and all(isinstance(v, dict) for v in pools.values()), "pools",
              "expected a JSON object of objects {device: {image, resource, ...}}")
