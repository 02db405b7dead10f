"""The real distributed launcher (mindzoo.launcher) against the real API server, acting as the
chart's pipeline ServiceAccount: its Indexed Job lands on the fake Ascend 910 nodes and
completes while rank 0's log is echoed; a failing worker fails the launch with the tail of its
log; cleanup leaves nothing; a second launch adopts the Job of the first; a disrupted worker is replaced
a bounded number of times; the Role grants exactly the calls these launches make. kwok serves the workers' logs (Cluster.pod_logs) through the API
server's pods/log, which the launcher reads as the ServiceAccount."""

from __future__ import annotations

import re
import uuid

import pytest

import datetime
import threading

from apicalls import record, role_triples, triples
from kubeharness import FAIL_LABEL, HOLD_LABEL
from launcher_objects import FAILING_LOG, PROGRESS_LOG, TrainerStandIn
from mindzoo.launcher import LaunchSpec, Toleration
from mindzoo.launcher.run import LaunchConflict, LaunchFailed, launch

pytestmark = [pytest.mark.control, pytest.mark.cluster]


def ascend_spec(ns: str, pool: dict, **kw) -> LaunchSpec:
    return LaunchSpec(
        name=f"launch-{uuid.uuid4().hex[:6]}", image="localhost/mindzoo-cpu:0.1.0",
        command=("mindzoo", "train", "--workers", "8"), nodes=2, namespace=ns,
        resources={pool["resource"]: str(pool["perWorker"])}, node_selector=pool.get("nodeSelector") or {},
        tolerations=tuple(Toleration(t["key"]) for t in pool.get("tolerations") or []), timeout_s=120, **kw)


@pytest.fixture
def as_pipeline(cluster, mindzoo_release):
    ns = mindzoo_release["namespace"]
    pool = mindzoo_release["defaults"]["MINDZOO_NODE_POOLS"]["ascend910"]
    return cluster.impersonate(ns, mindzoo_release["service_account"]), ns, pool


def gone(cluster, ns, name):
    from kubernetes import client

    api = cluster.api_client()
    jobs = client.BatchV1Api(api).list_namespaced_job(ns).items
    services = client.CoreV1Api(api).list_namespaced_service(ns).items
    return not [j for j in jobs if j.metadata.name == name] and not [s for s in services if s.metadata.name == name]


def test_launch_completes_on_the_ascend_nodes_and_cleans_up(cluster, as_pipeline):
    from kubernetes import client

    from mindzoo.launcher.run import delete

    api, ns, pool = as_pipeline
    spec = ascend_spec(ns, pool, pod_labels={HOLD_LABEL: "true"})
    said = []
    with cluster.pod_logs(ns, PROGRESS_LOG, container="train"):
        thread, out = in_background(launch, spec, api, say=said.append, poll_s=0.5, cleanup=False)
        nodes = cluster.placement(ns, f"mindzoo.io/launch={spec.name}", 2)
        thread.join(180)
    assert not thread.is_alive(), "the launch did not finish in 180 s after its workers were released"
    assert "error" not in out, out.get("error")
    result = out["result"]
    assert result.succeeded == 2 and said[0].startswith(f"launched job {ns}/{spec.name}: 2 node(s)")
    # Rank 0's log, streamed (follow) through the API server while the launch ran: every line, in order, once.
    assert said[1:] == [f"[rank0] {line}" for line in PROGRESS_LOG], said
    pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=f"mindzoo.io/launch={spec.name}").items
    # 8 chips per worker and per node: one worker on each fake Ascend 910 node, stable hostnames.
    assert nodes == ["ascend910-0", "ascend910-1"]
    assert sorted(p.spec.hostname for p in pods) == [f"{spec.name}-0", f"{spec.name}-1"]
    service = cluster.core().read_namespaced_service(spec.name, ns)  # as admin: the launcher never reads it
    assert service.spec.cluster_ip == "None" and service.metadata.owner_references[0].kind == "Job"
    delete(spec, api)
    assert cluster.wait_for("launch cleaned up", lambda: gone(cluster, ns, spec.name), 60)


def test_a_failing_worker_fails_the_launch_with_its_log_tail_and_cleans_up(cluster, as_pipeline):
    api, ns, pool = as_pipeline
    spec = ascend_spec(ns, pool, pod_labels={FAIL_LABEL: "true"})
    with cluster.pod_logs(ns, FAILING_LOG, container="train"), pytest.raises(LaunchFailed) as failed:
        launch(spec, api, say=lambda line: None, poll_s=0.5)
    # Both workers fail; the lowest index is reported, with the last 5 lines of its log.
    message = str(failed.value)
    assert re.fullmatch(rf"worker 0 \({spec.name}-0-\w+\) failed: (.*)", message), message
    assert message.endswith("failed: " + " | ".join(FAILING_LOG[-5:])), message
    assert "log unavailable" not in message and FAILING_LOG[1] not in message
    assert cluster.wait_for("failed launch cleaned up", lambda: gone(cluster, ns, spec.name), 60)


def in_background(fn, *args, **kwargs) -> tuple[threading.Thread, dict]:
    """Run ``fn`` in a thread; the returned dict gets its ``result`` or its ``error``."""
    out: dict = {}

    def run():
        try:
            out["result"] = fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - handed to the test
            out["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def workers(cluster, ns, name, phase="Running"):
    pods = cluster.core().list_namespaced_pod(ns, label_selector=f"mindzoo.io/launch={name}").items
    return {p.metadata.annotations["batch.kubernetes.io/job-completion-index"]: p
            for p in pods if p.status.phase == phase and p.metadata.deletion_timestamp is None}


def disrupt(cluster, ns, pod):
    """What the kubelet writes when it preempts or evicts a pod: DisruptionTarget, then Failed (exit 137)."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    container = pod.status.container_statuses[0]
    cluster.core().patch_namespaced_pod_status(pod.metadata.name, ns, {"status": {
        "phase": "Failed",
        "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                        "message": "preempted by a higher-priority pod (test)", "lastTransitionTime": now}],
        "containerStatuses": [{"name": container.name, "image": container.image, "imageID": "", "ready": False,
                               "restartCount": 0, "state": {"terminated": {
                                   "exitCode": 137, "reason": "Error", "startedAt": now, "finishedAt": now}}}]}})


def release(cluster, ns, name):
    """Let kwok complete the held workers (and any replacement the Job controller makes meanwhile)."""
    for pod in workers(cluster, ns, name).values():
        if (pod.metadata.labels or {}).get(HOLD_LABEL):
            cluster.core().patch_namespaced_pod(pod.metadata.name, ns, {"metadata": {"labels": {HOLD_LABEL: None}}})


def test_a_disrupted_worker_is_replaced_and_the_launch_completes(cluster, as_pipeline):
    api, ns, pool = as_pipeline
    spec = ascend_spec(ns, pool, pod_labels={HOLD_LABEL: "true"}, max_disruptions=1)
    said = []
    thread, out = in_background(launch, spec, api, say=said.append, poll_s=0.5, cleanup=False)
    running = cluster.wait_for("both workers running", lambda: len(workers(cluster, ns, spec.name)) == 2 and
                               workers(cluster, ns, spec.name), 60)
    disrupt(cluster, ns, running["1"])
    # The Job controller replaces worker 1 (after its pod-failure backoff, ~10 s); worker 0 runs on.
    cluster.wait_for("worker 1 replaced", lambda: (workers(cluster, ns, spec.name).get("1") or running["1"])
                     .metadata.name != running["1"].metadata.name, 60)
    cluster.wait_for("the launch to finish", lambda: release(cluster, ns, spec.name) or not thread.is_alive(), 60)
    assert "error" not in out, out
    assert out["result"].succeeded == 2
    job = cluster.batch().read_namespaced_job(spec.name, ns)
    assert job.status.failed == 1 and job.status.succeeded == 2
    assert any("1 worker pod(s) disrupted" in line for line in said), said
    from mindzoo.launcher.run import delete

    delete(spec, api)
    assert cluster.wait_for("launch cleaned up", lambda: gone(cluster, ns, spec.name), 60)


def test_a_disruption_past_the_bound_fails_the_launch_naming_the_worker(cluster, as_pipeline):
    api, ns, pool = as_pipeline
    spec = ascend_spec(ns, pool, pod_labels={HOLD_LABEL: "true"}, max_disruptions=0)
    thread, out = in_background(launch, spec, api, say=lambda line: None, poll_s=0.5)
    running = cluster.wait_for("both workers running", lambda: len(workers(cluster, ns, spec.name)) == 2 and
                               workers(cluster, ns, spec.name), 60)
    disrupt(cluster, ns, running["1"])
    thread.join(60)
    message = str(out.get("error"))
    assert isinstance(out.get("error"), LaunchFailed), out
    assert message.startswith(f"worker 1 ({running['1'].metadata.name}) was disrupted (evicted, preempted)"), message
    assert "at most 0" in message
    assert cluster.wait_for("failed launch cleaned up", lambda: gone(cluster, ns, spec.name), 60)


def test_a_second_launch_adopts_the_job_and_refuses_another_spec(cluster, as_pipeline):
    """A launcher killed outright leaves its Job running; launching the same spec again takes it over
    (no 409) and does not start a fresh Job; the same name with other flags is refused, untouched."""
    api, ns, pool = as_pipeline
    spec = ascend_spec(ns, pool, pod_labels={HOLD_LABEL: "true"})
    first, _ = in_background(launch, spec, api, say=lambda line: None, poll_s=0.5, cleanup=False)
    running = cluster.wait_for("both workers running", lambda: len(workers(cluster, ns, spec.name)) == 2 and
                               workers(cluster, ns, spec.name), 60)
    uid = cluster.batch().read_namespaced_job(spec.name, ns).metadata.uid
    other = LaunchSpec(**{**vars(spec), "nodes": 3})
    with pytest.raises(LaunchConflict) as refused:
        launch(other, api, say=lambda line: None, poll_s=0.5)
    assert str(refused.value).startswith(f"job {ns}/{spec.name} exists and is not this launch's (another spec)")
    said, fresh = [], []
    second, out = in_background(launch, spec, api, say=said.append, poll_s=0.5, cleanup=False,
                                fresh=lambda: fresh.append(1))
    cluster.wait_for("the launches to finish", lambda: release(cluster, ns, spec.name) or not (
        first.is_alive() or second.is_alive()), 60)
    assert out["result"].adopted and out["result"].succeeded == 2 and fresh == [], out
    assert said[0].startswith(f"adopted job {ns}/{spec.name}: 2 node(s)"), said
    # The same Job ran to its end: the pods the first launch started finished it, nothing was recreated.
    assert cluster.batch().read_namespaced_job(spec.name, ns).metadata.uid == uid
    finished = workers(cluster, ns, spec.name, "Succeeded")
    assert {p.metadata.name for p in finished.values()} == {p.metadata.name for p in running.values()}
    from mindzoo.launcher.run import delete

    delete(spec, api)
    assert cluster.wait_for("adopted launch cleaned up", lambda: gone(cluster, ns, spec.name), 60)


def test_the_role_grants_exactly_what_the_launcher_calls(cluster, mindzoo_release, trainer_crds):
    """Every path of the launcher - create, follow, log tail, adopt, replace a failed Job, delete - run as
    the pipeline ServiceAccount while recording its calls, for both kinds; their RBAC triples must be the
    Role's rules. The TrainJob's conditions come from a stand-in for Trainer's controller (TrainerStandIn:
    on kwok there is no Trainer), so its paths make exactly the calls they make on a real cluster."""
    from kubernetes import client

    ns, sa = mindzoo_release["namespace"], mindzoo_release["service_account"]
    pool = mindzoo_release["defaults"]["MINDZOO_NODE_POOLS"]["ascend910"]
    api = cluster.impersonate(ns, sa)
    calls = record(api)
    done = ascend_spec(ns, pool)
    with cluster.pod_logs(ns, PROGRESS_LOG, container="train"):
        launch(done, api, say=lambda line: None, poll_s=0.3, cleanup=False)
        assert launch(done, api, say=lambda line: None, poll_s=0.3).adopted  # adopts the finished Job
    failing = ascend_spec(ns, pool, pod_labels={FAIL_LABEL: "true"})
    said = []
    with cluster.pod_logs(ns, FAILING_LOG, container="train"):
        for cleanup in (False, True):  # the second launch replaces the failed Job the first one kept
            with pytest.raises(LaunchFailed):
                launch(failing, api, say=said.append, poll_s=0.3, cleanup=cleanup)
    assert any("of an earlier attempt failed or is going: replacing it" in line for line in said), said
    for outcome in ("Complete", "Failed"):
        said.clear()
        spec = ascend_spec(ns, pool, kind="trainjob", runtime="mindzoo-mindspore")
        with TrainerStandIn(cluster.api_client(), ns, spec.name, outcome):
            for cleanup in (False, True):  # the second launch adopts (or replaces) what the first one kept
                if outcome == "Complete":
                    assert launch(spec, api, say=said.append, poll_s=0.3, cleanup=cleanup).adopted is cleanup
                else:
                    with pytest.raises(LaunchFailed, match="stand-in"):
                        launch(spec, api, say=said.append, poll_s=0.3, cleanup=cleanup)
        assert outcome == "Complete" or any("replacing it" in line for line in said), said
    roles = client.RbacAuthorizationV1Api(cluster.api_client()).list_namespaced_role(ns).items
    role = next(r for r in roles if r.metadata.name.endswith("-launcher"))
    assert triples(calls) == role_triples(role), (sorted(triples(calls)), sorted(role_triples(role)))
