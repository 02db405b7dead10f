"""charts/mindzoo on the real node, in its default mode: MLflow, MinIO and PostgreSQL really run
(images from images/mlflow and images/minio; PostgreSQL is a stand-in built from Debian's
postgresql under the official image's name, see chartimages.py), talk to each other through
ClusterIP Services and CoreDNS, and `helm test` runs its test pods for real.

The release is installed once (``real_release``); the tests that change it put it back.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request

import pytest

from chartimages import CHART
from realnode import NODE_NAME
from releases import INSTANCE, owned, secret_data

pytestmark = [pytest.mark.control, pytest.mark.cluster, pytest.mark.realnode]


SERVERS = "app.kubernetes.io/component in (mlflow,minio,postgresql)"


def _pods(real_cluster, ns: str, release: str):
    """The release's server pods (not its hook or test pods)."""
    return real_cluster.core().list_namespaced_pod(ns, label_selector=f"{INSTANCE}={release},{SERVERS}").items


def _all_ready(real_cluster, ns: str, release: str) -> bool:
    pods = [p for p in _pods(real_cluster, ns, release) if p.metadata.deletion_timestamp is None]
    return bool(pods) and all(
        any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []) for p in pods)


def _mlflow(real_cluster, ns: str, path: str, body: dict | None = None, service: str = "mindzoo-mlflow",
            login: dict[str, str] | None = None) -> dict:
    """Call MLflow's REST API through its ClusterIP, as a pod would (the host routes Services to the node).
    Retried for a while, as a client would: just after MLflow's pod turns Ready, kube-proxy may not have
    programmed the Service's rules yet (the node answers "unreachable" or "refused")."""
    service = real_cluster.core().read_namespaced_service(service, ns).spec

    def call():
        request = urllib.request.Request(f"http://{service.cluster_ip}:{service.ports[0].port}{path}",
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json", "Host": "localhost",
                                                  **(login or {})})
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return (json.loads(response.read() or b"{}"),)
        except urllib.error.HTTPError:
            raise
        except urllib.error.URLError:
            return None

    return real_cluster.wait_for(f"MLflow's API at {service.cluster_ip} ({path})", call, 120, 2)[0]


def _never_restarted(real_cluster, ns: str, release: str) -> dict[str, list]:
    """Server containers that restarted, with why (``OOMKilled``, ...): none is the healthy answer."""
    restarted = {}
    for pod in _pods(real_cluster, ns, release):
        for status in pod.status.container_statuses or []:
            if status.restart_count:
                last = status.last_state.terminated
                restarted[pod.metadata.name] = [status.restart_count, last.reason if last else None]
    return restarted


def test_every_server_pod_runs_on_the_real_node_and_is_ready(real_cluster, real_release):
    ns = real_release["namespace"]
    servers = {p.metadata.labels["app.kubernetes.io/component"]: p for p in _pods(real_cluster, ns, "mindzoo")
               if p.status.phase == "Running"}
    assert set(servers) == {"mlflow", "minio", "postgresql"}
    assert all(p.spec.node_name == NODE_NAME for p in servers.values())
    assert _all_ready(real_cluster, ns, "mindzoo")
    assert _never_restarted(real_cluster, ns, "mindzoo") == {}
    labels = real_cluster.core().read_namespace(ns).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"  # and every pod above was admitted


def test_helm_test_runs_its_pods_for_real_and_they_pass(real_cluster, real_release):
    """With the NetworkPolicies the chart creates by default in place: the traffic they allow still flows. (The
    real node has no NetworkPolicy-enforcing network plugin, so what they deny is not enforced here; their
    shape is checked in tests/charts/test_chart_render.py.)"""
    from kubernetes import client

    policies = client.NetworkingV1Api(real_cluster.api_client()).list_namespaced_network_policy(
        real_release["namespace"]).items
    assert sorted(p.metadata.name for p in policies) == ["mindzoo-minio", "mindzoo-mlflow", "mindzoo-postgresql"]
    out = real_cluster.helm("test", "mindzoo", "-n", real_release["namespace"], "--logs", "--timeout", "4m",
                            timeout=300).stdout
    assert len(re.findall(r"Phase:\s+Succeeded", out)) == 2, out
    assert "MLflow OK at http://mindzoo-mlflow." in out, out  # printed by the test pod itself
    # The object-store pod ran as the tasks' scoped MinIO user, which the setup Job created on the real MinIO.
    assert "as the scoped tasks' user: mindzoo write/read/delete; mlflow refused" in out, out


def test_helm_test_fails_when_mlflows_database_secret_is_wrong(real_cluster, real_release):
    ns = real_release["namespace"]
    core = real_cluster.core()
    good = core.read_namespaced_secret("mindzoo-postgresql", ns).data
    wrong = base64.b64encode(b"not-the-password").decode()
    core.patch_namespaced_secret("mindzoo-postgresql", ns, {"data": {"password": wrong}})
    try:
        core.delete_collection_namespaced_pod(ns, label_selector="app.kubernetes.io/component=mlflow")
        failed = real_cluster.helm("test", "mindzoo", "-n", ns, "--timeout", "3m", check=False, timeout=300)
        assert failed.returncode != 0, failed.stdout
        assert "mindzoo-test-mlflow" in failed.stdout + failed.stderr
    finally:
        core.delete_collection_namespaced_pod(ns, label_selector="app.kubernetes.io/component=test")  # kept: it failed
        core.patch_namespaced_secret("mindzoo-postgresql", ns, {"data": good})
        core.delete_collection_namespaced_pod(ns, label_selector="app.kubernetes.io/component=mlflow")
        real_cluster.wait_for("MLflow Ready again", lambda: _all_ready(real_cluster, ns, "mindzoo"), 300, 2)


def test_upgrade_keeps_data_and_secrets(real_cluster, real_release):
    ns = real_release["namespace"]
    before = secret_data(real_cluster, ns, "mindzoo")
    experiment = _mlflow(real_cluster, ns, "/api/2.0/mlflow/experiments/create",
                         {"name": "kept-across-upgrade"})["experiment_id"]
    real_cluster.helm("upgrade", "mindzoo", str(CHART), "-n", ns, "--set", "mlflow.workers=3", "--wait",
                      "--timeout", "6m", timeout=480)
    assert secret_data(real_cluster, ns, "mindzoo") == before
    args = real_cluster.core().list_namespaced_pod(ns, label_selector="app.kubernetes.io/component=mlflow")
    assert any("--workers=3" in (p.spec.containers[0].args or []) for p in args.items)
    found = _mlflow(real_cluster, ns, f"/api/2.0/mlflow/experiments/get?experiment_id={experiment}")
    assert found["experiment"]["name"] == "kept-across-upgrade"  # the database kept its data
    # Within its memory limit at 3 workers (MLflow's job runner, off by default, once had it OOM-killed in a loop).
    assert _never_restarted(real_cluster, ns, "mindzoo") == {}


def _basic_auth(real_cluster, ns: str, secret: str) -> dict[str, str]:
    data = real_cluster.core().read_namespaced_secret(secret, ns).data
    user, password = (base64.b64decode(data[k]).decode() for k in ("username", "password"))
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_uninstall_leaves_only_what_the_chart_documents(real_cluster, real_release):
    """Last in this module: a second release in its own namespace, with MLflow's basic auth on (mlflow.auth),
    installed, tested (the test pods log in), removed - and installed again on what the first left, which must
    still open it (kept Secrets, retained data: the admin the first install created in PostgreSQL still logs
    in with the kept password)."""
    ns = real_cluster.create_namespace("mindzoo-uninstall")
    real_cluster.add_host_path_volumes(2)
    real_cluster.helm("install", "gone", str(CHART), "-n", ns, "--set", "mlflow.auth.enabled=true", "--wait",
                      "--timeout", "6m", timeout=480)
    tested = real_cluster.helm("test", "gone", "-n", ns, "--logs", "--timeout", "4m", timeout=300).stdout
    assert "basic auth (as mindzoo)" in tested and "mlflow refused" in tested, tested  # printed by the test pods
    login = _basic_auth(real_cluster, ns, "gone-mindzoo-mlflow-auth")
    experiment = _mlflow(real_cluster, ns, "/api/2.0/mlflow/experiments/create", {"name": "kept-across-reinstall"},
                         service="gone-mindzoo-mlflow", login=login)["experiment_id"]
    service = real_cluster.core().read_namespaced_service("gone-mindzoo-mlflow", ns).spec
    anonymous = urllib.request.Request(f"http://{service.cluster_ip}:{service.ports[0].port}"
                                       f"/api/2.0/mlflow/experiments/get?experiment_id={experiment}",
                                       headers={"Host": "localhost"})
    with pytest.raises(urllib.error.HTTPError, match="401"):  # reachable (above), but not without a login
        urllib.request.urlopen(anonymous, timeout=20)
    secrets = secret_data(real_cluster, ns, "gone")
    real_cluster.helm("uninstall", "gone", "-n", ns, "--wait", "--timeout", "3m")

    def only_kept_left():
        left = owned(real_cluster, ns, "gone")
        return (left,) if set(left) <= {"PersistentVolumeClaim", "Secret"} else None

    (left,) = real_cluster.wait_for("the release's objects to go", only_kept_left, 180, 2)
    # charts/mindzoo/README.md: uninstall keeps the StatefulSets' data claims (whenDeleted: Retain) and the
    # generated credentials that open them (helm.sh/resource-policy: keep).
    assert left == {"PersistentVolumeClaim": ["data-gone-mindzoo-minio-0", "data-gone-mindzoo-postgresql-0"],
                    "Secret": ["gone-mindzoo-minio", "gone-mindzoo-minio-tasks", "gone-mindzoo-mlflow-auth",
                               "gone-mindzoo-postgresql"]}
    assert real_cluster.core().list_namespaced_pod(ns).items == []
    # Installed again: the kept Secrets are read back, PostgreSQL's retained data opens with them.
    real_cluster.helm("install", "gone", str(CHART), "-n", ns, "--set", "mlflow.auth.enabled=true", "--wait",
                      "--timeout", "6m", timeout=480)
    assert secret_data(real_cluster, ns, "gone") == secrets
    found = _mlflow(real_cluster, ns, f"/api/2.0/mlflow/experiments/get?experiment_id={experiment}",
                    service="gone-mindzoo-mlflow", login=login)
    assert found["experiment"]["name"] == "kept-across-reinstall"
    real_cluster.helm("uninstall", "gone", "-n", ns, "--wait", "--timeout", "3m")
