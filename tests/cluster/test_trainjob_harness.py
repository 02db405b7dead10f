"""Kubeflow Trainer v2 and JobSet, the real controllers (tests/cluster/trainer.py), on the real node:
a TrainJob on a ClusterTrainingRuntime of this module's own becomes a JobSet whose pods run and find
each other by name, the validating webhook rejects a TrainJob naming a missing runtime, a failing
worker fails the TrainJob, and stopping the controllers leaves nothing behind.

What the distributed launcher relies on is asserted here and printed (run with ``-s`` to see it):
the pods' DNS names, their rank labels and annotations, the conditions a failure leaves.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from realnode import NODE_NAME

pytestmark = [pytest.mark.control, pytest.mark.cluster, pytest.mark.realnode, pytest.mark.trainjob]

GROUP, VERSION = "trainer.kubeflow.org", "v1alpha1"
RESTRICTED = {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
              "seccompProfile": {"type": "RuntimeDefault"}}
PORT = 29500
#: Pod 0 waits for one connection; pod 1 resolves pod 0 by the name the launcher uses and connects.
RENDEZVOUS = f"""
import os, socket, sys, time
index = int(os.environ["JOB_COMPLETION_INDEX"])
job = socket.gethostname().rsplit("-node-", 1)[0]
print("index", index, "hostname", socket.gethostname(), flush=True)
if index == 0:
    server = socket.create_server(("", {PORT}))
    server.settimeout(120)
    peer, address = server.accept()
    print("accepted", address[0], peer.recv(64).decode(), flush=True)
    sys.exit(0)
name = f"{{job}}-node-0-0.{{job}}"
for _ in range(240):
    try:
        address = socket.gethostbyname(name)
        with socket.create_connection((address, {PORT}), timeout=5) as conn:
            conn.sendall(b"hello from 1")
        print("resolved", name, address, flush=True)
        sys.exit(0)
    except OSError as exc:
        last = exc
        time.sleep(0.5)
sys.exit(f"cannot reach {{name}}: {{last}}")
"""


def _runtime(name: str, image: str) -> dict:
    """Plain ML (numNodes only): one replicated Job ``node``, the trainer step, that prints its index."""
    pod = {"restartPolicy": "Never", "automountServiceAccountToken": False,
           "containers": [{"name": "node", "image": image, "imagePullPolicy": "Never", "securityContext": RESTRICTED,
                           "command": ["python3", "-c",
                                       "import os; print('index', os.environ['JOB_COMPLETION_INDEX'])"]}]}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterTrainingRuntime", "metadata": {"name": name},
            "spec": {"mlPolicy": {"numNodes": 1}, "template": {"spec": {
                "network": {"publishNotReadyAddresses": True},
                "replicatedJobs": [{"name": "node", "template": {
                    "metadata": {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}},
                    # backoffLimit 0: a failed worker fails its Job at once (the default retries 6 times).
                    "spec": {"backoffLimit": 0, "template": {"spec": pod}}}}]}}}}


def _trainjob(name: str, runtime: str, *, nodes: int, command: list[str] | None = None) -> dict:
    trainer = {"numNodes": nodes, **({"command": command} if command else {})}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainJob", "metadata": {"name": name},
            "spec": {"runtimeRef": {"apiGroup": GROUP, "kind": "ClusterTrainingRuntime", "name": runtime},
                     "trainer": trainer}}


@pytest.fixture(scope="module")
def runtime(real_cluster, trainer) -> str:
    from components.images import CPU

    name = f"harness-plain-{uuid.uuid4().hex[:6]}"
    real_cluster.custom().create_cluster_custom_object(GROUP, VERSION, "clustertrainingruntimes", _runtime(name, CPU))
    return name


@pytest.fixture
def tns(real_cluster) -> str:
    return real_cluster.create_namespace(f"tj-{uuid.uuid4().hex[:8]}")


def _condition(real_cluster, ns: str, name: str, *types: str) -> dict | None:
    job = real_cluster.custom().get_namespaced_custom_object(GROUP, VERSION, ns, "trainjobs", name)
    return next((c for c in job.get("status", {}).get("conditions", [])
                 if c["type"] in types and c["status"] == "True"), None)


def _pods(real_cluster, ns: str, name: str) -> list:
    pods = real_cluster.core().list_namespaced_pod(ns, label_selector=f"jobset.sigs.k8s.io/jobset-name={name}").items
    return sorted(pods, key=lambda p: int(p.metadata.annotations["batch.kubernetes.io/job-completion-index"]))


def test_a_trainjob_runs_its_pods_on_the_real_node_they_find_each_other_by_name_and_it_completes(
        real_cluster, runtime, tns):
    name = f"tj-{uuid.uuid4().hex[:6]}"
    custom, start = real_cluster.custom(), time.monotonic()
    custom.create_namespaced_custom_object(GROUP, VERSION, tns, "trainjobs",
                                           _trainjob(name, runtime, nodes=2, command=["python3", "-c", RENDEZVOUS]))
    jobset = real_cluster.wait_for("the JobSet of the TrainJob", lambda: custom.get_namespaced_custom_object(
        "jobset.x-k8s.io", "v1alpha2", tns, "jobsets", name), timeout=60)
    assert jobset["metadata"]["ownerReferences"][0]["kind"] == "TrainJob"
    done = real_cluster.wait_for("the TrainJob Complete",
                                 lambda: _condition(real_cluster, tns, name, "Complete", "Failed"), timeout=240)
    elapsed = time.monotonic() - start
    pods = _pods(real_cluster, tns, name)
    logs = [real_cluster.core().read_namespaced_pod_log(p.metadata.name, tns) for p in pods]
    print(f"\nTrainJob {name}: {done} after {elapsed:.1f} s")
    for pod, log in zip(pods, logs):
        print(f"pod {pod.metadata.name} on {pod.spec.node_name}: {pod.status.phase}, hostname {pod.spec.hostname}, "
              f"subdomain {pod.spec.subdomain}\n  labels {pod.metadata.labels}\n"
              f"  annotations {pod.metadata.annotations}"
              f"\n  log: {log.strip()!r}")
    assert done["type"] == "Complete", (done, logs)
    assert [p.spec.node_name for p in pods] == [NODE_NAME, NODE_NAME]
    assert [p.status.phase for p in pods] == ["Succeeded", "Succeeded"]
    assert [p.spec.hostname for p in pods] == [f"{name}-node-0-0", f"{name}-node-0-1"]
    assert [p.metadata.annotations["batch.kubernetes.io/job-completion-index"] for p in pods] == ["0", "1"]
    resolved = next(line for line in logs[1].splitlines() if line.startswith("resolved"))
    assert resolved.split()[1] == f"{name}-node-0-0.{name}"
    assert "accepted" in logs[0] and "hello from 1" in logs[0]


def test_a_trainjob_naming_a_missing_runtime_is_rejected_by_the_validating_webhook(real_cluster, trainer, tns):
    from kubernetes.client.rest import ApiException

    with pytest.raises(ApiException) as rejected:
        real_cluster.custom().create_namespaced_custom_object(GROUP, VERSION, tns, "trainjobs",
                                                              _trainjob("orphan", "no-such-runtime", nodes=1))
    status = json.loads(rejected.value.body)
    print(f"\nrejected: {rejected.value.status} {status['reason']}: {status['message']}")
    assert (rejected.value.status, status["reason"]) == (403, "Forbidden")
    assert status["message"] == (
        'admission webhook "validator.trainjob.trainer.kubeflow.org" denied the request: '
        'spec.RuntimeRef: Invalid value: '
        '{"name":"no-such-runtime","apiGroup":"trainer.kubeflow.org","kind":"ClusterTrainingRuntime"}: '
        'ClusterTrainingRuntime.trainer.kubeflow.org "no-such-runtime" not found: '
        "specified clusterTrainingRuntime must be created before the TrainJob is created")


def test_a_worker_that_exits_non_zero_fails_the_trainjob(real_cluster, runtime, tns):
    name = f"tj-{uuid.uuid4().hex[:6]}"
    custom, start = real_cluster.custom(), time.monotonic()
    script = ("import os, sys; i = int(os.environ['JOB_COMPLETION_INDEX']); print('index', i); "
              "sys.exit(3 if i == 1 else 0)")
    custom.create_namespaced_custom_object(GROUP, VERSION, tns, "trainjobs",
                                           _trainjob(name, runtime, nodes=2, command=["python3", "-c", script]))
    failed = real_cluster.wait_for("the TrainJob Failed",
                                   lambda: _condition(real_cluster, tns, name, "Failed", "Complete"), timeout=240)
    elapsed = time.monotonic() - start
    jobset = custom.get_namespaced_custom_object("jobset.x-k8s.io", "v1alpha2", tns, "jobsets", name)
    trainjob = custom.get_namespaced_custom_object(GROUP, VERSION, tns, "trainjobs", name)
    print(f"\nTrainJob {name} failed after {elapsed:.1f} s\n"
          f"  TrainJob conditions {trainjob['status'].get('conditions')}"
          f"\n  JobSet conditions {jobset['status'].get('conditions')}")
    assert failed["type"] == "Failed", failed
    assert any(c["type"] == "Failed" and c["status"] == "True" for c in jobset["status"]["conditions"])


def _leftovers(cluster, workdir: Path) -> list[str]:
    """What a stopped harness started in ``workdir`` would leave: processes, webhook configurations, CRDs."""
    from kubernetes import client

    import hoststate

    api = cluster.api_client()
    admission, selector = client.AdmissionregistrationV1Api(api), "mindzoo.test/harness=trainer"
    webhooks = [*admission.list_mutating_webhook_configuration(label_selector=selector).items,
                *admission.list_validating_webhook_configuration(label_selector=selector).items]
    crds = [c.metadata.name for c in client.ApiextensionsV1Api(api).list_custom_resource_definition().items]
    return ([f"process {pid}" for pid in hoststate.processes_of([str(workdir)])]
            + [f"webhook configuration {w.metadata.name}" for w in webhooks]
            + [f"CRD {c}" for c in crds if c.endswith((".trainer.kubeflow.org", ".jobset.x-k8s.io"))])


def test_stopping_the_controllers_leaves_no_process_webhook_crd_or_object_behind(cluster, tmp_path):
    """On the kwok cluster (the session's real node runs its own): start, use, stop, look."""
    from trainer import Controllers

    start = time.monotonic()
    controllers = Controllers.start(cluster, tmp_path)
    print(f"\ncontrollers ready after {time.monotonic() - start:.1f} s")
    pids = [p.proc.pid for p in controllers.processes]
    assert len(pids) == 2 and controllers.alive()
    custom = cluster.custom()
    custom.create_cluster_custom_object(GROUP, VERSION, "clustertrainingruntimes", _runtime("in-use", "example/cpu:1"))
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", "trainjobs", _trainjob("left", "in-use", nodes=2))
    cluster.wait_for("the JobSet", lambda: custom.get_namespaced_custom_object(
        "jobset.x-k8s.io", "v1alpha2", "default", "jobsets", "left"), timeout=60)

    start = time.monotonic()
    assert controllers.stop() == []
    print(f"stopped after {time.monotonic() - start:.1f} s")
    assert all(not Path(f"/proc/{pid}").exists() for pid in pids)
    assert _leftovers(cluster, tmp_path) == []
    assert cluster.batch().list_namespaced_job("default").items == []
    assert cluster.core().list_namespaced_pod("default").items == []


def test_a_controller_that_cannot_start_fails_the_start_with_its_log_and_leaves_nothing_behind(
        cluster, tmp_path, monkeypatch):
    """Something already listens on the port given to the webhooks: the controllers cannot serve them."""
    import socket

    import trainer
    from procs import HarnessError

    with socket.create_server(("127.0.0.1", 0)) as squatter:
        monkeypatch.setattr(trainer, "free_port", lambda host: squatter.getsockname()[1])
        with pytest.raises(HarnessError) as failed:
            trainer.Controllers.start(cluster, tmp_path, timeout=60)
    message = str(failed.value)
    print(f"\n{message}")
    assert message.startswith("the JobSet controller's webhook (a dry-run JobSet): jobset exited with 1")
    assert "address already in use" in message
    assert f"log of jobset ({tmp_path / 'logs' / 'jobset.log'})" in message
    assert _leftovers(cluster, tmp_path) == []
