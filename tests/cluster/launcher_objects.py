"""The objects the distributed launcher creates (an Indexed Job of workers plus a
headless Service for worker 0's DNS name), built from the chart's node-pool
defaults. A stand-in until the real launcher (pipeline issue) exists; its shape
follows facts §4.2: ``completionMode: Indexed``, ``subdomain`` = the Service.

Also the logs the launcher tests have kwok serve for the workers (``Cluster.pod_logs``).
"""

from __future__ import annotations

from typing import Any

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
