"""``mindzoo launch train``: the train step on worker pods instead of in this pod.

This process (a KFP task pod, or a shell with a kubeconfig) creates an Indexed Job and its
headless Service, or a Kubeflow Trainer TrainJob (``--launch-kind``, :mod:`.run`), streams
rank 0's log, waits, and turns rank 0's
result into this step's KFP outputs, exactly as ``mindzoo train`` would have. The
pods run ``mindzoo launch node ... -- train <the same flags>`` (:mod:`.node`) in the
device pool's image with its resources, node selector and tolerations; they get the
object store's keys from the Secret (``secretKeyRef``), never as values.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from mindzoo.errors import ConfigError, MindzooError
from mindzoo.launcher.spec import LaunchSpec, SecretKeyEnv, Toleration
from mindzoo.launcher.trainjob import RUNTIMES
from mindzoo.runs.layout import pipeline_train_run_id

SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# Passed on to the worker pods as plain values (no credentials among them).
FORWARDED_ENV = ("MINDZOO_PIPELINE_RUN_ID", "MINDZOO_LOCAL_PIPELINE_RUN_ID", "MINDZOO_S3_SECURE", "AWS_DEFAULT_REGION")
#: Names the Secret of MLflow basic-auth credentials the pipeline gave this task (pipelines/tasks.py).
ENV_MLFLOW_SECRET = "MINDZOO_MLFLOW_SECRET"


def result_uri(output: str, run_id: str) -> Any:
    from mindzoo.storage import S3Uri

    return S3Uri.parse(output).join(run_id, "launch", "result.json")


def rank_uri(result_at: Any, rank: int) -> Any:
    """Where rank ``rank`` publishes the digest of its final weights: beside rank 0's result."""
    from mindzoo.storage import S3Uri

    parent, _, _ = str(result_at).rpartition("/")
    return S3Uri.parse(f"{parent}/ranks/rank{rank}.json")


def job_name(run_id: str) -> str:
    """A DNS label (<= 47 characters) unique to the run id: the Job, its Service and pod hostnames."""
    slug = re.sub(r"[^a-z0-9-]+", "-", run_id.lower()).strip("-")[:30].strip("-")
    return f"mz-{slug}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}" if slug else f"mz-{uuid.uuid4().hex[:12]}"


def build_spec(cfg: Any, launch: Any, storage_cfg: Any, tracking_cfg: Any) -> LaunchSpec:
    """The LaunchSpec of a run: pool and image of ``cfg.device``, ``cfg.workers`` devices per pod."""
    from mindzoo.config import StorageConfig, TrackingConfig, TrainConfig
    from mindzoo.endpoints import resolve_tracking_uri
    from mindzoo.engine.training import to_argv

    device = launch.device or cfg.device
    pool = json.loads(launch.pools).get(device, {})
    image = launch.image or pool.get("image") or os.environ.get("MINDZOO_IMAGE_REF", "")
    if not image:
        raise ConfigError("launch.image", f"no worker image: --launch-pools has no {device!r} pool; "
                                          "pass --launch-image")
    if not launch.s3_secret:
        raise ConfigError("launch.s3_secret", "the worker pods read the object store's keys from a Secret: name it")
    argv = ["train", *to_argv(TrainConfig, cfg), *to_argv(StorageConfig, storage_cfg, "storage"),
            *to_argv(TrackingConfig, tracking_cfg, "tracking")]
    uri = result_uri(cfg.output, cfg.run_id)
    env = {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}
    endpoints = {"MINDZOO_S3_ENDPOINT": storage_cfg.endpoint or os.environ.get("MINDZOO_S3_ENDPOINT", ""),
                 "MLFLOW_TRACKING_URI": resolve_tracking_uri(tracking_cfg) or ""}
    env.update({k: v for k, v in endpoints.items() if v})
    env.update(image_digest_env(image))
    resource = pool.get("resource", "")
    return LaunchSpec(
        name=job_name(cfg.run_id), image=image, nodes=launch.nodes, namespace=launch.namespace or _namespace(),
        command=("mindzoo", "launch", "node", "--workers", str(cfg.workers), "--result", str(uri), "--", *argv),
        port=launch.port, resources={resource: str(cfg.workers)} if resource else {}, cpu=launch.cpu,
        memory=launch.memory, node_selector=dict(pool.get("node_selector") or {}),
        tolerations=tuple(Toleration(key) for key in pool.get("tolerations") or ()), env=env,
        secret_keys=(SecretKeyEnv("AWS_ACCESS_KEY_ID", launch.s3_secret, launch.s3_access_key_key),
                     SecretKeyEnv("AWS_SECRET_ACCESS_KEY", launch.s3_secret, launch.s3_secret_key_key),
                     *mlflow_auth_keys(os.environ)),
        service_account=launch.service_account or None, timeout_s=launch.timeout,
        pod_labels=dict(item.split("=", 1) for item in launch.labels), max_disruptions=launch.max_disruptions,
        kind=launch.kind, runtime=launch.runtime or RUNTIMES.get(cfg.engine, ""), queue=launch.queue)


def mlflow_auth_keys(environ: Any) -> tuple[SecretKeyEnv, ...]:
    """MLflow's basic-auth credentials for the worker pods, from the Secret this task got its own from
    (``$MINDZOO_MLFLOW_SECRET``, set by the pipeline). Only when this pod really has them: the pipeline mounts
    that Secret as optional, and a worker that named a missing Secret would never start."""
    secret = environ.get(ENV_MLFLOW_SECRET, "")
    if not (secret and environ.get("MLFLOW_TRACKING_USERNAME")):
        return ()
    return (SecretKeyEnv("MLFLOW_TRACKING_USERNAME", secret, "username"),
            SecretKeyEnv("MLFLOW_TRACKING_PASSWORD", secret, "password"))


def image_digest_env(image: str) -> dict[str, str]:
    """``MINDZOO_IMAGE_DIGEST`` for worker pods whose image reference is pinned (``...@sha256:<hex>``): then the
    digest they run in is known for certain; a reference by tag alone tells nothing (the tag may move)."""
    from mindzoo.runs.layout import ENV_IMAGE_DIGEST, check_digest

    _, pinned, digest = image.rpartition("@")
    return {ENV_IMAGE_DIGEST: check_digest(digest, "launch.image")} if pinned else {}


def run(cfg: Any, launch: Any, ctx: Any) -> None:
    """Launch, wait, and hand rank 0's outputs to KFP (the step's executor output)."""
    from mindzoo.launcher.run import launch as start

    cfg = replace(cfg, run_id=cfg.run_id or pipeline_train_run_id() or f"run-{uuid.uuid4().hex[:12]}")
    spec = build_spec(cfg, launch, ctx.storage_cfg, ctx.tracking_cfg)
    uri = result_uri(cfg.output, cfg.run_id)
    ranks = launch.nodes * (1 if cfg.engine == "torch" else cfg.workers)

    def fresh() -> None:  # only before a new object: an adopted one's results (maybe published already) are its own
        for stale in [uri, *(rank_uri(uri, rank) for rank in range(ranks))]:
            ctx.storage.delete(stale)  # an earlier, failed attempt's results must not pass for this one's

    ctx.say(f"run {cfg.run_id}: {launch.nodes} node(s) x {cfg.workers} worker(s) of {cfg.device} "
            f"as {spec.kind} {spec.namespace}/{spec.name}")
    try:
        result = start(spec, api_client(), say=ctx.say, cleanup=not launch.keep, fresh=fresh)
    except Exception as err:  # the kubernetes client's ApiException, without importing it where it is absent
        if type(err).__name__ != "ApiException":
            raise
        raise MindzooError(f"the Kubernetes API refused the launch in namespace {spec.namespace}: "
                           f"{_api_message(err)}") from None
    payload = _result(ctx.storage, uri)
    _check_ranks(ctx, [_result(ctx.storage, rank_uri(uri, rank)) for rank in range(ranks)])
    ctx.kfp.relay(payload.get("artifacts", {}))
    ctx.say(f"{result.succeeded} node(s) finished in {result.seconds:.0f}s; rank 0's result: {uri}")


def _result(storage: Any, uri: Any, wait_s: float = 30.0) -> dict:
    """Rank 0's published result; object stores can lag the pod's exit by a moment."""
    deadline = time.monotonic() + wait_s
    while not storage.exists(uri):
        if time.monotonic() > deadline:
            raise MindzooError(f"the job succeeded but rank 0 published no result at {uri}")
        time.sleep(1.0)
    return json.loads(storage.get_bytes(uri))


def _check_ranks(ctx: Any, results: list[dict]) -> None:
    """Data parallelism keeps every rank's weights identical: a difference is a failed run."""
    digests = {r.get("weights_sha256") for r in results}
    if len(digests) != 1 or None in digests:
        raise MindzooError(f"data-parallel ranks ended with different weights: {sorted(map(str, digests))}")
    ctx.say(f"{len(results)} ranks finished with identical weights (sha256 {digests.pop()[:12]})")


def publish_result(result_at: str, payload: dict) -> None:
    """Rank 0's side (in a worker pod): publish the result the launcher reads."""
    from mindzoo.storage import S3Uri, Storage

    Storage.connect().put_bytes(json.dumps(payload, sort_keys=True).encode(), S3Uri.parse(result_at),
                                "application/json")


def api_client() -> Any:
    """In a pod its ServiceAccount (the chart's pipeline SA has exactly the launcher's RBAC), else kubeconfig."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise MindzooError("`mindzoo launch train` needs the kubernetes client (the runtime image and the "
                           "control environment have it)") from None
    try:
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
        else:
            config.load_kube_config()
    except config.ConfigException as err:
        raise MindzooError(f"no Kubernetes API to launch on: {err}") from None
    return client.ApiClient()


def _api_message(err: Any) -> str:
    """The API server's own words (its Status message), else the HTTP status."""
    try:
        message = json.loads(err.body or "{}").get("message")
    except (TypeError, ValueError):
        message = None
    return message or f"{err.status} {err.reason}"


def _namespace() -> str:
    """This pod's namespace; outside a pod the kubeconfig's current context's; else `default`."""
    if SA_NAMESPACE.is_file():
        return SA_NAMESPACE.read_text().strip()
    try:
        from kubernetes import config

        _, active = config.list_kube_config_contexts()
        return (active or {}).get("context", {}).get("namespace") or "default"
    except Exception:  # noqa: BLE001 - no kubeconfig: api_client() says so
        return "default"

