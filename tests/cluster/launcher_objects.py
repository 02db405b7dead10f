"""The objects the distributed launcher creates (an Indexed Job of workers plus a
headless Service for worker 0's DNS name), built from the chart's node-pool
defaults. A stand-in until the real launcher (pipeline issue) exists; its shape
follows facts §4.2: ``completionMode: Indexed``, ``subdomain`` = the Service.

Also the logs the launcher tests have kwok serve for the workers (``Cluster.pod_logs``).
"""

from __future__ import annotations

from typing import Any

from kwoknodes import FAIL_LABEL

#: What the workers of a launch print (kwok serves it as every worker's log).
PROGRESS_LOG = ("mindzoo train: rank 0 of 2, 8 workers, device Ascend910",
                "epoch 1/2 step 50/50 loss=1.9731", "epoch 2/2 step 50/50 loss=1.2047 top1=0.412",
                "saved checkpoint runs/R/model")
#: What a failing worker printed last: the launch's error must end with its last 5 lines.
FAILING_LOG = ("mindzoo train: rank 0 of 2, 8 workers, device Ascend910", "epoch 1/2 step 10/50 loss=2.3012",
               "epoch 1/2 step 20/50 loss=2.2154", "epoch 1/2 step 30/50 loss=2.1418",
               "allocating 31.5 GiB on device 3 (2.1 GiB free)", "error: rank 1: out of memory (simulated)",
               "worker exiting with status 1")

RESTRICTED = {"runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False,
              "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def worker_job(name: str, pool: dict[str, Any], *, workers: int = 2, per_worker: int | None = None,
               tolerate: bool = True, labels: dict[str, str] | None = None, backoff_limit: int = 0) -> dict[str, Any]:
    """An Indexed Job of ``workers`` pods, each asking ``pool``'s accelerator."""
    count = str(per_worker or pool["perWorker"])
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "subdomain": name,
        "nodeSelector": pool.get("nodeSelector") or {},
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "worker",
            "image": "mindzoo/cpu:0.1.0",
            "command": ["mindzoo", "train"],
            "env": [{"name": "MS_SCHED_HOST", "value": f"{name}-0.{name}"},
                    {"name": "MS_WORKER_NUM", "value": str(workers)}],
            "resources": {"requests": {"cpu": "1", "memory": "1Gi", pool["resource"]: count},
                          "limits": {"memory": "1Gi", pool["resource"]: count}},
            "securityContext": RESTRICTED,
        }],
    }
    if tolerate:
        spec["tolerations"] = pool.get("tolerations") or []
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"completionMode": "Indexed", "completions": workers, "parallelism": workers,
                 "backoffLimit": backoff_limit,
                 "template": {"metadata": {"labels": {"app": name, **(labels or {})}}, "spec": spec}},
    }


def headless_service(name: str) -> dict[str, Any]:
    """Gives pod ``<name>-<index>`` the DNS name ``<name>-<index>.<name>``."""
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"clusterIP": "None", "selector": {"batch.kubernetes.io/job-name": name},
                     "ports": [{"name": "sched", "port": 8118}], "publishNotReadyAddresses": True}}


class TrainerStandIn:
    """Plays what the launcher reads of Trainer and JobSet - nothing more, and it is not Trainer. Without
    ``pool``: the TrainJob's final condition (``outcome``). With ``pool``: the worker pods too, as an Indexed
    Job ``<trainjob>-node-0`` whose pods carry JobSet's label (and the completion index, from the Job
    controller), so its pods are named as JobSet names them (``<trainjob>-node-0-<index>-<random>``); kwok
    runs (or, with ``fail``, fails) them, and the TrainJob's condition follows the Job's. On the kwok cluster
    it lets the launcher's create, wait, stream, report, adopt, replace and delete paths run against the real
    API server. The real controllers run in the `trainjob` tests on the real node."""

    def __init__(self, api: Any, namespace: str, name: str, outcome: str = "Complete",
                 pool: dict[str, Any] | None = None, fail: bool = False) -> None:
        import threading

        self.api, self.namespace, self.name, self.outcome = api, namespace, name, outcome
        self.pool, self.fail = pool, fail
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"trainer-stand-in-{name}")

    def __enter__(self) -> "TrainerStandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        custom, batch = client.CustomObjectsApi(self.api), client.BatchV1Api(self.api)
        where = ("trainer.kubeflow.org", "v1alpha1", self.namespace, "trainjobs", self.name)
        while not self.stop.wait(0.2):
            try:
                job = custom.get_namespaced_custom_object(*where)
                if (job.get("status") or {}).get("conditions") or job["metadata"].get("deletionTimestamp"):
                    continue
                outcome = self.outcome if self.pool is None else self._workers(batch, job)
                if outcome:
                    custom.patch_namespaced_custom_object_status(*where, {"status": {"conditions": [
                        _condition(outcome)]}})
            except ApiException as exc:
                if exc.status not in (404, 409):
                    raise

    def _workers(self, batch: Any, trainjob: dict[str, Any]) -> str | None:
        """Create the workers' Job once; then its outcome as the TrainJob's condition type (None: running)."""
        from kubernetes.client.rest import ApiException

        name = f"{self.name}-node-0"
        try:
            status = batch.read_namespaced_job(name, self.namespace).status
        except ApiException as exc:
            if exc.status != 404:
                raise
            nodes = trainjob["spec"]["trainer"]["numNodes"]
            labels = {"jobset.sigs.k8s.io/jobset-name": self.name, **({FAIL_LABEL: "true"} if self.fail else {})}
            job = worker_job(name, self.pool, workers=nodes, per_worker=1, labels=labels)
            job["spec"]["template"]["spec"]["containers"][0]["name"] = "node"
            job["metadata"]["ownerReferences"] = [{"apiVersion": "trainer.kubeflow.org/v1alpha1", "kind": "TrainJob",
                                                   "name": self.name, "uid": trainjob["metadata"]["uid"]}]
            batch.create_namespaced_job(self.namespace, job)
            return None
        true = {c.type for c in status.conditions or [] if c.status == "True"}
        return "Failed" if "Failed" in true else "Complete" if "Complete" in true else None


def _condition(outcome: str) -> dict[str, str]:
    from datetime import datetime, timezone

    return {"type": outcome, "status": "True", "reason": f"JobSet{outcome}",
            "message": f"jobset {outcome.lower()} (stand-in)",
            "lastTransitionTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
