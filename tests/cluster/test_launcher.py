"""The real distributed launcher (mindzoo.launcher) against the real API server, acting as the
chart's pipeline ServiceAccount: its Indexed Job lands on the fake Ascend 910 nodes and
completes while rank 0's log is echoed; a failing worker fails the launch with the tail of its
log; cleanup leaves nothing. kwok serves the workers' logs (Cluster.pod_logs) through the API
server's pods/log, which the launcher reads as the ServiceAccount."""

from __future__ import annotations

import re
import uuid

import pytest

from kubeharness import FAIL_LABEL
from launcher_objects import FAILING_LOG, PROGRESS_LOG
from mindzoo.launcher import LaunchSpec, Toleration
from mindzoo.launcher.run import LaunchFailed, launch

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
    spec = ascend_spec(ns, pool)
    said = []
    with cluster.pod_logs(ns, PROGRESS_LOG, container="train"):
        result = launch(spec, api, say=said.append, poll_s=0.5, cleanup=False)
    assert result.succeeded == 2 and said[0].startswith(f"launched job {ns}/{spec.name}: 2 node(s)")
    # Rank 0's log, streamed (follow) through the API server while the launch ran: every line, in order, once.
    assert said[1:] == [f"[rank0] {line}" for line in PROGRESS_LOG], said
    pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector=f"mindzoo.io/launch={spec.name}").items
    # 8 chips per worker and per node: one worker on each fake Ascend 910 node, stable hostnames.
    assert sorted(p.spec.node_name for p in pods) == ["ascend910-0", "ascend910-1"]
    assert sorted(p.spec.hostname for p in pods) == [f"{spec.name}-0", f"{spec.name}-1"]
    service = client.CoreV1Api(api).read_namespaced_service(spec.name, ns)
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
