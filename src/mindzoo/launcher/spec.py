"""The shape of a distributed training launch: an Indexed Job plus a headless Service.

One pod per node. ``JOB_COMPLETION_INDEX`` is the node rank; pod 0 hosts the
MindSpore scheduler (or the torch master) and is reachable by a stable name,
``<job>-0.<service>``, through the headless Service and the pod ``subdomain``.
Building the objects is pure (tested without a cluster); :mod:`.run` creates,
watches and cleans them up.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from mindzoo.configkit import check

# The contract between the launcher and `mindzoo train` inside each pod.
ENV_NODE_RANK = "MINDZOO_NODE_RANK"
ENV_NUM_NODES = "MINDZOO_NUM_NODES"
ENV_MASTER_ADDR = "MINDZOO_MASTER_ADDR"
ENV_MASTER_PORT = "MINDZOO_MASTER_PORT"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
LABEL = "mindzoo.io/launch"
#: The digest of the Job as this launch would create it: a second launch with the same run id adopts a
#: Job carrying the same digest, and refuses one that differs (other flags under the same run id).
SPEC_ANNOTATION = "mindzoo.io/launch-spec-sha256"
#: The worker container's name; the pod failure policy's exit-code rule names it.
CONTAINER = "train"
#: Kueue's LocalQueue label: Kueue admits (unsuspends) a labelled workload when its quota allows.
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
#: The Kubernetes kinds a launch can run as (``--launch-kind``): an Indexed Job + headless Service (no
#: operator needed), or a Kubeflow Trainer v2.3.0 TrainJob (:mod:`.trainjob`).
KINDS = ("job", "trainjob")


@dataclass(frozen=True)
class Toleration:
    key: str
    operator: str = "Exists"
    effect: str = "NoSchedule"
    value: str | None = None


@dataclass(frozen=True)
class SecretKeyEnv:
    """Env var ``env`` from key ``key`` of Secret ``secret`` (credentials never travel as values)."""

    env: str
    secret: str
    key: str


@dataclass(frozen=True)
class LaunchSpec:
    name: str
    image: str
    command: tuple[str, ...]
    nodes: int = 1
    namespace: str = "default"
    port: int = 8118
    resources: dict[str, str] = field(default_factory=dict)
    cpu: str = "1"
    memory: str = "4Gi"
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    secret_env: tuple[str, ...] = ()  # Secrets whose keys become env vars (credentials)
    secret_keys: tuple[SecretKeyEnv, ...] = ()  # single keys of Secrets as named env vars
    service_account: str | None = None
    timeout_s: float = 24 * 3600
    ttl_after_finished_s: int = 3600
    shm_size: str = "1Gi"  # data loaders and collective libraries use /dev/shm
    pod_labels: dict[str, str] = field(default_factory=dict)  # e.g. for cost allocation
    max_disruptions: int = 3  # evictions/preemptions replaced before the launch fails
    kind: str = "job"  # one of KINDS
    runtime: str = ""  # the ClusterTrainingRuntime of a TrainJob
    queue: str = ""  # a Kueue LocalQueue

    def __post_init__(self) -> None:
        check(re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,45}[a-z0-9])?", self.name) is not None, "launch.name",
              f"must be a DNS-1123 label of at most 47 characters (got {self.name!r})")
        check(self.nodes >= 1, "launch.nodes", "must be >= 1")
        check(1024 <= self.port <= 65535, "launch.port", "must be in 1024..65535")
        check(self.timeout_s > 0, "launch.timeout_s", "must be > 0")
        check(bool(self.command), "launch.command", "must not be empty")
        check(0 <= self.max_disruptions <= 100, "launch.max_disruptions", "must be in 0..100")
        check(self.kind in KINDS, "launch.kind", f"must be one of {', '.join(KINDS)} (got {self.kind!r})")
        check(self.kind != "trainjob" or bool(self.runtime), "launch.runtime", "a TrainJob needs a runtime")

    @property
    def service_name(self) -> str:
        return self.name

    @property
    def master_addr(self) -> str:
        # Indexed Job pods are named <job>-<index> in DNS through the Service subdomain.
        return f"{self.name}-0.{self.service_name}.{self.namespace}.svc"


def job_manifest(spec: LaunchSpec) -> dict[str, Any]:
    """The Indexed Job: one pod per node. A disrupted pod (evicted, preempted, its node drained: the
    ``DisruptionTarget`` condition) is replaced, at most ``max_disruptions`` times (backoffLimit counts
    them); any other failure - a non-zero exit of the train container - fails the Job at once (FailJob),
    so a real error is not retried into a longer, costlier failure."""
    labels = object_labels(spec)
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": labels},
        "spec": {
            "completionMode": "Indexed",
            "completions": spec.nodes,
            "parallelism": spec.nodes,
            "backoffLimit": spec.max_disruptions,
            "podFailurePolicy": {"rules": [
                {"action": "Count", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                {"action": "FailJob", "onExitCodes": {"containerName": CONTAINER, "operator": "NotIn",
                                                      "values": [0]}},
            ]},
            # A replacement starts once the old pod has fully stopped: never two pods of one rank at once.
            "podReplacementPolicy": "Failed",
            "activeDeadlineSeconds": int(spec.timeout_s),
            "ttlSecondsAfterFinished": spec.ttl_after_finished_s,
            "template": {"metadata": {"labels": {**spec.pod_labels, **labels}}, "spec": _pod_spec(spec)},
        },
    }
    return with_digest(job)


def object_labels(spec: LaunchSpec) -> dict[str, str]:
    """The labels of the launch's object and its worker pods: the chart's NetworkPolicy admits pods with the
    app labels to the object store and MLflow; the queue label hands the workload to Kueue."""
    labels = {LABEL: spec.name, "app.kubernetes.io/name": "mindzoo", "app.kubernetes.io/component": "train"}
    return {**labels, QUEUE_LABEL: spec.queue} if spec.queue else labels


def with_digest(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` annotated with the digest of its content (adoption compares it)."""
    digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()
    obj["metadata"]["annotations"] = {SPEC_ANNOTATION: digest}
    return obj


def _pod_spec(spec: LaunchSpec) -> dict[str, Any]:
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "subdomain": spec.service_name,
        # Workers never call the Kubernetes API: no token in their pods (the launcher's SA may create Jobs).
        "automountServiceAccountToken": False,
        "containers": [_container(spec)],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": spec.shm_size}}],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    return {**pod, **placement(spec)}


def placement(spec: LaunchSpec) -> dict[str, Any]:
    """Where the worker pods run and as whom: the device pool's node selector and tolerations, the
    service account (only the fields that are set)."""
    pod: dict[str, Any] = {}
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod["tolerations"] = [{k: v for k, v in vars(t).items() if v is not None} for t in spec.tolerations]
    if spec.service_account:
        pod["serviceAccountName"] = spec.service_account
    return pod


def resources(spec: LaunchSpec) -> dict[str, Any]:
    """Each worker's requests and limits. Extended resources (accelerators) must have limits equal to requests."""
    return {"requests": {"cpu": spec.cpu, "memory": spec.memory, **spec.resources},
            "limits": {"memory": spec.memory, **spec.resources}}


def cluster_env(spec: LaunchSpec) -> list[dict[str, Any]]:
    """Where a worker sits in the cluster: its rank (the Indexed Job's completion index), the node count and
    pod 0's stable name and port."""
    return [
        {"name": ENV_NODE_RANK, "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}}},
        {"name": ENV_NUM_NODES, "value": str(spec.nodes)},
        {"name": ENV_MASTER_ADDR, "value": spec.master_addr},
        {"name": ENV_MASTER_PORT, "value": str(spec.port)},
    ]


def run_env(spec: LaunchSpec) -> list[dict[str, Any]]:
    """What every worker needs besides its place in the cluster: the endpoints and the keys (from Secrets)."""
    return [
        *({"name": k, "value": v} for k, v in sorted(spec.env.items())),
        *({"name": s.env, "valueFrom": {"secretKeyRef": {"name": s.secret, "key": s.key}}} for s in spec.secret_keys),
    ]


def _container(spec: LaunchSpec) -> dict[str, Any]:
    return {
        "name": CONTAINER,
        "image": spec.image,
        "command": list(spec.command),
        "env": [*cluster_env(spec), *run_env(spec)],
        "envFrom": [{"secretRef": {"name": s}} for s in spec.secret_env],
        "ports": [{"containerPort": spec.port, "name": "rendezvous"}],
        "resources": resources(spec),
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }


def service_manifest(spec: LaunchSpec, owner_uid: str | None = None) -> dict[str, Any]:
    """Headless Service giving pod 0 its stable name; owned by the Job so it goes with it. No
    ``blockOwnerDeletion``: setting it needs ``update`` on ``jobs/finalizers`` where the API server enforces
    owner-reference permissions, and the garbage collector removes the Service without it."""
    meta: dict[str, Any] = {"name": spec.service_name, "namespace": spec.namespace, "labels": {LABEL: spec.name}}
    if owner_uid:
        meta["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": spec.name,
                                    "uid": owner_uid}]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "clusterIP": "None",
            # Workers must resolve pod 0 before it is Ready (it becomes ready by rendezvousing).
            "publishNotReadyAddresses": True,
            "selector": {LABEL: spec.name},
            "ports": [{"name": "rendezvous", "port": spec.port, "targetPort": spec.port}],
        },
    }
