"""The shape of a distributed launch as a Kubeflow Trainer TrainJob (``--launch-kind trainjob``).

Pinned to Trainer v2.3.0 (API ``trainer.kubeflow.org/v1alpha1``): v2.2 changed that API (ElasticPolicy
removed, PodTemplateOverrides became RuntimePatches), so other versions may refuse these objects.

The TrainJob names one of the chart's ClusterTrainingRuntimes (charts/mindzoo/templates/trainer/), which
holds what every launch shares: the ``node`` container's security settings, /dev/shm, the rank variable
(MindSpore runtime) or Trainer's torch policy (``PET_*``), the JobSet failure policy and gang scheduling.
The TrainJob adds what is this launch's: image, command, node count, resources, env, and - through a
runtime patch - the pool's node selector and tolerations, the service account and the pod labels (the
chart's NetworkPolicy admits worker pods by those labels). Building it is pure; :mod:`.kinds` creates it.
"""

from __future__ import annotations

from typing import Any

from mindzoo.configkit import check
from mindzoo.launcher.spec import (ENV_MASTER_ADDR, ENV_MASTER_PORT, ENV_NODE_RANK, ENV_NUM_NODES, LaunchSpec,
                                   object_labels, placement, resources, run_env, with_digest)

GROUP = "trainer.kubeflow.org"
VERSION = "v1alpha1"
PLURAL = "trainjobs"
RUNTIME_KIND = "ClusterTrainingRuntime"
#: Trainer's name for the trainer replicatedJob and its container; JobSet names pod 0 ``<trainjob>-node-0-0``.
NODE = "node"
#: The owner of this launcher's runtime patch (patches are keyed by manager; Kueue writes its own).
PATCH_MANAGER = "mindzoo.io/launcher"
#: JobSet labels every pod of a JobSet (= the TrainJob's name) with it (sigs.k8s.io/jobset v0.12.0).
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
#: The chart's runtimes, by training engine (``--launch-runtime`` overrides).
RUNTIMES = {"mindspore": "mindzoo-mindspore", "torch": "mindzoo-torch"}
#: Variables the runtime (the rank, the port) or Trainer's torch policy (``PET_*``) provides: never set here.
RUNTIME_ENV = (ENV_NODE_RANK, ENV_MASTER_PORT)


def master_addr(spec: LaunchSpec) -> str:
    """Pod 0's stable name: JobSet's headless Service is named after the JobSet, which is named after the
    TrainJob, and its pods ``<jobset>-<replicatedJob>-<job index>-<completion index>``."""
    return f"{spec.name}-{NODE}-0-0.{spec.name}.{spec.namespace}.svc"


def trainer_job_name(spec: LaunchSpec) -> str:
    """The Indexed Job JobSet makes of the ``node`` replicatedJob: ``<jobset>-<replicatedJob>-<job index>``."""
    return f"{spec.name}-{NODE}-0"


def trainjob_manifest(spec: LaunchSpec) -> dict[str, Any]:
    """The TrainJob of ``spec`` (``spec.kind == "trainjob"``), carrying the digest of its content."""
    # Trainer's `trainer` has no envFrom, and a runtime patch may not add one: only single Secret keys.
    check(not spec.secret_env, "launch.secret_env", "a TrainJob takes single Secret keys, not whole Secrets")
    labels = object_labels(spec)
    trainer: dict[str, Any] = {
        "image": spec.image,
        "command": list(spec.command),
        "numNodes": spec.nodes,
        "resourcesPerNode": resources(spec),
        # The node count and pod 0's name (node.py resolves it to an IP, as MindSpore wants). Under the torch
        # runtime, Trainer's PET_* variables come first (node.py and the torch engine read them first).
        "env": [{"name": ENV_NUM_NODES, "value": str(spec.nodes)},
                {"name": ENV_MASTER_ADDR, "value": master_addr(spec)},
                *(e for e in run_env(spec) if e["name"] not in RUNTIME_ENV)],
    }
    job: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainJob",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": labels},
        "spec": {
            "runtimeRef": {"name": spec.runtime, "apiGroup": GROUP, "kind": RUNTIME_KIND},
            "trainer": trainer,
            "runtimePatches": [{"manager": PATCH_MANAGER, "trainingRuntimeSpec": _patch(spec, labels)}],
            "activeDeadlineSeconds": int(spec.timeout_s),
        },
    }
    return with_digest(job)


def _patch(spec: LaunchSpec, labels: dict[str, str]) -> dict[str, Any]:
    """This launch's share of the worker pods that the runtime cannot know: pool placement, service account,
    labels (the same as the Job's workers: the NetworkPolicy and Kueue see no difference)."""
    pod = placement(spec)
    template: dict[str, Any] = {"metadata": {"labels": {**spec.pod_labels, **labels}}}
    if pod:
        template["spec"] = pod
    return {"template": {"spec": {"replicatedJobs": [
        {"name": NODE, "template": {"spec": {"template": template}}}]}}}

