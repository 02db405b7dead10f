"""The launcher rides out a flaky API server: 429s, 503s, reset connections and a create whose answer
is lost. The API server is the real one; a fault-injecting proxy (tests/cluster/faultproxy.py) stands
between it and the launcher, which acts as the chart's pipeline ServiceAccount through it."""

from __future__ import annotations

import uuid

import pytest

from faultproxy import Fault, FaultProxy
from launcher_objects import PROGRESS_LOG
from mindzoo.launcher import LaunchSpec, Toleration
from mindzoo.launcher.kubecall import Backoff
from mindzoo.launcher.run import launch

pytestmark = [pytest.mark.control, pytest.mark.cluster]

FAST = Backoff(attempts=5, first_s=0.05, max_s=1.0)


def through(cluster, proxy: FaultProxy, ns: str, service_account: str):
    """An ApiClient that talks to ``proxy`` as the ServiceAccount (the proxy adds the TLS client identity)."""
    from kubernetes import client

    config = client.Configuration()
    config.host = proxy.url
    api = client.ApiClient(config)
    api.set_default_header("Impersonate-User", f"system:serviceaccount:{ns}:{service_account}")
    return api


def test_transient_errors_are_retried_and_a_lost_create_is_not_repeated(cluster, mindzoo_release):
    ns, sa = mindzoo_release["namespace"], mindzoo_release["service_account"]
    pool = mindzoo_release["defaults"]["MINDZOO_NODE_POOLS"]["ascend910"]
    spec = LaunchSpec(name=f"flaky-{uuid.uuid4().hex[:6]}", image="localhost/mindzoo-cpu:0.1.0",
                      command=("mindzoo", "train"), nodes=2, namespace=ns,
                      resources={pool["resource"]: str(pool["perWorker"])}, node_selector=pool["nodeSelector"],
                      tolerations=tuple(Toleration(t["key"]) for t in pool["tolerations"]), timeout_s=120)
    admin = cluster.api_client()
    faults = [Fault("GET", f"/jobs/{spec.name}", "503"),  # is there a Job to adopt?
              Fault("POST", "/jobs", "lose-response"),  # created, but the launcher never hears it
              Fault("GET", f"/jobs/{spec.name}", "reset"),
              Fault("POST", "/services", "429"),
              Fault("GET", "/pods", "503"),
              Fault("DELETE", f"/jobs/{spec.name}", "503")]
    said = []
    with FaultProxy(cluster.server, admin.configuration.ssl_ca_cert, admin.configuration.cert_file,
                    admin.configuration.key_file, faults) as proxy, \
            cluster.pod_logs(ns, PROGRESS_LOG, container="train"):
        result = launch(spec, through(cluster, proxy, ns, sa), say=said.append, poll_s=0.3, backoff=FAST)
    assert result.succeeded == 2 and not result.adopted, said
    # Every fault was met (in the order the calls came: the reset hit the first GET's repeat).
    assert not proxy.pending and sorted(a for _, _, a in proxy.injected) == sorted(f.action for f in faults)
    # The lost create happened; its repeat met 409 and the launcher took the Job it had made as its own.
    creates = [status for method, path, status in proxy.answers if method == "POST" and path.endswith("/jobs")]
    assert creates == [201, 409], proxy.answers
    assert said[0].startswith(f"launched job {ns}/{spec.name}: 2 node(s)")
    assert [line for line in said if line.startswith("[rank0] ")] == [f"[rank0] {line}" for line in PROGRESS_LOG]
    # The Job was deleted in the end despite the 503 on its DELETE (its pods and Service go with it).
    assert cluster.wait_for("the Job gone", lambda: spec.name not in [
        j.metadata.name for j in cluster.batch().list_namespaced_job(ns).items], 60)
