"""The launcher's Indexed Job, created as the pipeline ServiceAccount from the chart's
node-pool defaults, is scheduled by the real kube-scheduler onto the fake accelerator
nodes and run to completion (or failure) by the real Job controller and kwok."""

from __future__ import annotations

import uuid

import pytest

from kubeharness import FAIL_LABEL, HOLD_LABEL
from launcher_objects import headless_service, worker_job

pytestmark = [pytest.mark.control, pytest.mark.cluster]


@pytest.fixture
def launcher(cluster, mindzoo_release):
    """(batch, core) API clients acting as the pipeline ServiceAccount, and its namespace."""
    from kubernetes import client

    api = cluster.impersonate(mindzoo_release["namespace"], mindzoo_release["service_account"])
    return client.BatchV1Api(api), client.CoreV1Api(api), mindzoo_release["namespace"]


def job_condition(batch, name, ns, kind):
    job = batch.read_namespaced_job(name, ns)
    return next((c for c in job.status.conditions or [] if c.type == kind and c.status == "True"), None)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:5]}"


def test_indexed_job_runs_on_the_ascend910_nodes_and_completes(cluster, mindzoo_release, launcher):
    batch, core, ns = launcher
    pool = mindzoo_release["defaults"]["MINDZOO_NODE_POOLS"]["ascend910"]
    assert pool["resource"] == "huawei.com/Ascend910" and pool["perWorker"] == 8
    name = unique("train")
    core.create_namespaced_service(ns, headless_service(name))
    batch.create_namespaced_job(ns, worker_job(name, pool, workers=2, labels={HOLD_LABEL: "true"}))
    nodes = cluster.placement(ns, f"batch.kubernetes.io/job-name={name}", 2)
    complete = cluster.wait_for(f"Job {name} Complete", lambda: job_condition(batch, name, ns, "Complete"), 90)
    assert complete.status == "True"
    job = batch.read_namespaced_job(name, ns)
    assert job.status.succeeded == 2 and job.status.completed_indexes == "0,1"
    pods = core.list_namespaced_pod(ns, label_selector=f"batch.kubernetes.io/job-name={name}").items
    # 8 chips per worker, 8 per node: one worker on each Ascend 910 node.
    assert nodes == ["ascend910-0", "ascend910-1"]
    assert sorted(p.spec.hostname for p in pods) == [f"{name}-0", f"{name}-1"]
    assert {p.spec.subdomain for p in pods} == {name}
    assert {p.status.phase for p in pods} == {"Succeeded"}
    assert cluster.core().read_namespaced_service(name, ns).spec.cluster_ip == "None"  # as admin: the launcher never reads it
    batch.delete_namespaced_job(name, ns, propagation_policy="Background")
    core.delete_namespaced_service(name, ns)


def test_a_failing_worker_fails_the_job(cluster, mindzoo_release, launcher):
    batch, core, ns = launcher
    pool = mindzoo_release["defaults"]["MINDZOO_NODE_POOLS"]["ascend910"]
    name = unique("fail")
    batch.create_namespaced_job(ns, worker_job(name, pool, workers=2, labels={FAIL_LABEL: "true"}))
    failed = cluster.wait_for(f"Job {name} Failed", lambda: job_condition(batch, name, ns, "Failed"), 90)
    assert failed.reason in ("BackoffLimitExceeded", "FailedIndexes", "PodFailurePolicy")
    assert not job_condition(batch, name, ns, "Complete")
    batch.delete_namespaced_job(name, ns, propagation_policy="Background")


@pytest.mark.parametrize("pool_name, nodes", [("ascend310", {"ascend310-0"}), ("gpu", {"gpu-0"})])
def test_other_pools_land_on_their_nodes(cluster, mindzoo_release, launcher, pool_name, nodes):
    batch, core, ns = launcher
    pool = mindzoo_release["defaults"]["MINDZOO_NODE_POOLS"][pool_name]
    name = unique(pool_name)
    batch.create_namespaced_job(ns, worker_job(name, pool, workers=1))
    cluster.wait_for(f"Job {name} Complete", lambda: job_condition(batch, name, ns, "Complete"), 90)
    pods = core.list_namespaced_pod(ns, label_selector=f"batch.kubernetes.io/job-name={name}").items
    assert {p.spec.node_name for p in pods} == nodes
    batch.delete_namespaced_job(name, ns, propagation_policy="Background")


@pytest.mark.parametrize("why, kwargs, message", [
    ("no toleration for the device plugin's taint", {"tolerate": False}, "untolerated taint"),
    ("more chips than a node has", {"per_worker": 16}, "Insufficient huawei.com/Ascend910"),
])
def test_unplaceable_workers_stay_pending(cluster, mindzoo_release, launcher, why, kwargs, message):
    batch, core, ns = launcher
    pool = mindzoo_release["defaults"]["MINDZOO_NODE_POOLS"]["ascend910"]
    name = unique("pending")
    batch.create_namespaced_job(ns, worker_job(name, pool, workers=1, **kwargs))

    def unschedulable():
        pods = core.list_namespaced_pod(ns, label_selector=f"batch.kubernetes.io/job-name={name}").items
        for pod in pods:
            for cond in pod.status.conditions or []:
                if cond.type == "PodScheduled" and cond.reason == "Unschedulable":
                    return cond
        return None

    cond = cluster.wait_for(f"the scheduler refusing a worker with {why}", unschedulable, 60)
    assert message in cond.message, cond.message
    batch.delete_namespaced_job(name, ns, propagation_policy="Background")
