"""Kubernetes settings of pipeline tasks, shared by the pipelines (kfp + kfp-kubernetes only).

Everything here is compile-time (``PipelineConfig``): which Secret holds the object
store's keys, the ConfigMap of endpoints, how node pools are reached, retries,
caching, and where the steps cache data. kfp.local ignores the platform part
(`mindzoo pipeline run-local` passes the local stack's endpoints and keys itself).
"""

import json
from typing import Optional

from kfp import dsl, kubernetes

from components import images
from mindzoo.launcher.train import ENV_MLFLOW_SECRET
from mindzoo.pipeline.config import PipelineConfig
from mindzoo.runs.layout import ENV_PIPELINE_RUN_ID

# Env var names the steps read (mindzoo.endpoints); the chart's pipeline-defaults ConfigMap uses them as keys.
RUN_ID_LABEL = "pipeline/runid"  # KFP 2.x's API server: v2_template.go, SetPodMetadataLabels
CONFIG_MAP_ENV = ("MINDZOO_S3_ENDPOINT", "MINDZOO_S3_SECURE", "MLFLOW_TRACKING_URI")
# Secret key -> env var of MLflow's basic-auth credentials (the chart's <release>-mlflow-auth).
MLFLOW_AUTH_ENV = {"username": "MLFLOW_TRACKING_USERNAME", "password": "MLFLOW_TRACKING_PASSWORD"}
PVC_MOUNT = "/mnt/mindzoo"
# Which device pool and image a train device uses.
TRAIN_POOLS = {"gpu": "gpu", "ascend": "ascend910"}
INFER_POOLS = {"ascend310": "ascend310", "ascend310p": "ascend310p"}


def pipeline_config(cfg: PipelineConfig) -> Optional[dsl.PipelineConfig]:
    """A per-run workspace PVC when asked for (KFP >= 2.15 backends)."""
    if not cfg.workspace_size:
        return None
    return dsl.PipelineConfig(workspace=dsl.WorkspaceConfig(size=cfg.workspace_size))


def cache_dir(cfg: PipelineConfig) -> Optional[str]:
    """What the steps pass as --cache-dir: the workspace, the data PVC, or None (the image's default)."""
    if cfg.workspace_size:
        return dsl.WORKSPACE_PATH_PLACEHOLDER
    if cfg.data_pvc:
        return f"{PVC_MOUNT}/cache"
    return None


# A retried train pod on another node may take its run over only once the killed pod's run lease
# (mindzoo.lease.RunLease.TTL, 60 s) has lapsed: the first retry waits longer than that.
RESUME_BACKOFF = "90s"


def step(task: dsl.PipelineTask, cfg: PipelineConfig, *, io_bound: bool = False, resumes: bool = False,
         cached: bool = False, name: str = "") -> dsl.PipelineTask:
    """Credentials from the Secret (never parameters), endpoints from the ConfigMap, retries, caching.

    ``resumes``: a train task; a retry (same pipeline run, same task, so the same default run id) resumes
    from the last published checkpoint instead of starting over.
    """
    kubernetes.use_secret_as_env(task, cfg.s3_secret, {cfg.s3_access_key_key: "AWS_ACCESS_KEY_ID",
                                                       cfg.s3_secret_key_key: "AWS_SECRET_ACCESS_KEY"})
    kubernetes.use_config_map_as_env(task, cfg.defaults_config_map, {k: k for k in CONFIG_MAP_ENV}, optional=True)
    # The KFP run id from the label KFP's API server puts on every pod of a run (mindzoo.runs.layout says why
    # not a placeholder); kfp.local ignores this and the command line passes it instead.
    kubernetes.use_field_path_as_env(task, ENV_PIPELINE_RUN_ID, f"metadata.labels['{RUN_ID_LABEL}']")
    if cfg.mlflow_secret:
        # MLflow's standard client variables; optional, so tasks start where MLflow runs without auth. The
        # distributed launcher hands the same Secret to its workers (mindzoo.launcher.train.mlflow_auth_keys).
        kubernetes.use_secret_as_env(task, cfg.mlflow_secret, MLFLOW_AUTH_ENV, optional=True)
        task.set_env_variable(ENV_MLFLOW_SECRET, cfg.mlflow_secret)
    if cfg.data_pvc:
        kubernetes.mount_pvc(task, cfg.data_pvc, PVC_MOUNT)
    if io_bound and cfg.retries:
        # Object-store hiccups and evicted pods; the steps resume or reuse what was published.
        task.set_retry(cfg.retries, backoff_duration="30s", backoff_factor=2.0, backoff_max_duration="600s")
    elif resumes and cfg.retries:
        task.set_retry(cfg.retries, backoff_duration=RESUME_BACKOFF, backoff_factor=2.0,
                       backoff_max_duration="600s")
    # KFP's cache key is the task's parameters, not the content behind a URI: a cached preprocess
    # would hand back the old dataset after files changed under the same source prefix. The steps
    # cache by content themselves (preprocess reuses a published hash in seconds), so KFP caches
    # nothing by default; a silently cached train would skip training on changed code or data.
    task.set_caching_options(enable_caching=cached)
    if name:
        task.set_display_name(name)
    return task


def on_pool(task: dsl.PipelineTask, cfg: PipelineConfig, pool: str, count: object, image: str) -> dsl.PipelineTask:
    """Run ``task`` on a device pool: ``count`` devices, the pool's node label and taint, its image."""
    spec = cfg.pool(pool)
    task.set_container_image(image)
    task.set_accelerator_type(spec.resource).set_accelerator_limit(count)
    if spec.selector:
        kubernetes.add_node_selector(task, *spec.selector)
    if spec.taint:
        kubernetes.add_toleration(task, key=spec.taint, operator="Exists", effect="NoSchedule")
    return task


def launch_pools(cfg: PipelineConfig) -> str:
    """The worker pods' pool and image per train device, for the distributed launcher (JSON)."""
    pools = {"cpu": {"image": images.CPU, "resource": "", "node_selector": {}, "tolerations": []}}
    for device, pool in TRAIN_POOLS.items():
        pools[device] = {"image": images.BY_DEVICE[device], **cfg.pool(pool).as_json()}
        pools[device].pop("count")  # one device per worker process: the launcher asks `workers` per pod
    return json.dumps(pools, sort_keys=True)
