"""`helm install / test / upgrade / uninstall` of charts/mindzoo on the real API
server, in every ci/*-values.yaml combination, in namespaces that enforce the
"restricted" Pod Security Standard: the controllers create every pod (admission
would refuse a non-restricted one), the scheduler places them, kwok makes them
Ready, so ``--wait`` returns only when the release is really up."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from releases import INSTANCE, owned, secret_data

pytestmark = [pytest.mark.control, pytest.mark.cluster]

CHART = Path(__file__).resolve().parents[2] / "charts" / "mindzoo"
COMBOS = sorted(p.name for p in (CHART / "ci").glob("*-values.yaml"))


def prerequisites(cluster, ns: str, combo: str) -> None:
    """The Secrets an operator creates before installing with existing credentials."""
    if combo != "external-values.yaml":
        return
    core = cluster.core()
    for name, data in (("mlpipeline-minio-artifact", {"accesskey": "minio", "secretkey": "from-kfp"}),
                       ("mlflow-database", {"username": "mlflow", "password": "p@ss:w/rd"})):
        core.create_namespaced_secret(ns, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                                           "stringData": data})


@pytest.mark.parametrize("combo", COMBOS)
def test_install_and_helm_test_each_combination(cluster, combo):
    ns = cluster.create_namespace(f"install-{combo.removesuffix('-values.yaml')}")
    prerequisites(cluster, ns, combo)
    out = cluster.helm("install", "rel", str(CHART), "-n", ns, "-f", str(CHART / "ci" / combo),
                       "--wait", "--timeout", "4m").stdout
    assert "STATUS: deployed" in out and "port-forward svc/rel-mindzoo-mlflow" in out
    objects = owned(cluster, ns, "rel")
    assert objects["Deployment"] == ["rel-mindzoo-mlflow"]
    assert "Job" not in objects, "the setup hook Job must complete and be deleted (hook-succeeded)"
    servers = "app.kubernetes.io/component in (mlflow,minio,postgresql)"
    pods = cluster.core().list_namespaced_pod(ns, label_selector=f"{INSTANCE}=rel,{servers}").items
    assert pods and all(p.status.phase == "Running" for p in pods), [(p.metadata.name, p.status.phase) for p in pods]
    assert len(pods) == (1 if combo == "external-values.yaml" else 3)
    if combo == "external-values.yaml":
        assert "StatefulSet" not in objects and "Secret" not in objects
    else:
        assert objects["StatefulSet"] == ["rel-mindzoo-minio", "rel-mindzoo-postgresql"]
        claims = cluster.core().list_namespaced_persistent_volume_claim(ns).items
        assert sorted(c.status.phase for c in claims) == ["Bound", "Bound"]
    # On by default: MLflow's, and MinIO's and PostgreSQL's where the chart runs them.
    assert len(objects["NetworkPolicy"]) == (1 if combo == "external-values.yaml" else 3)
    tested = cluster.helm("test", "rel", "-n", ns, "--timeout", "2m").stdout
    assert len(re.findall(r"Phase:\s+Succeeded", tested)) == 2, tested
    cluster.helm("uninstall", "rel", "-n", ns, "--wait", "--timeout", "2m")


def test_upgrade_keeps_the_generated_secrets(cluster):
    ns = cluster.create_namespace("upgrade")
    cluster.helm("install", "rel", str(CHART), "-n", ns, "--wait", "--timeout", "4m")
    before = secret_data(cluster, ns, "rel")
    assert set(before) == {"rel-mindzoo-minio", "rel-mindzoo-minio-tasks", "rel-mindzoo-postgresql"}
    assert len(base64.b64decode(before["rel-mindzoo-postgresql"]["password"])) == 32
    cluster.helm("upgrade", "rel", str(CHART), "-n", ns, "--set", "mlflow.workers=3", "--wait", "--timeout", "4m")
    cluster.helm("upgrade", "rel", str(CHART), "-n", ns, "-f", str(CHART / "ci" / "networkpolicy-values.yaml"),
                 "--wait", "--timeout", "4m")
    assert secret_data(cluster, ns, "rel") == before
    history = cluster.helm("history", "rel", "-n", ns).stdout
    assert history.count("superseded") == 2 and "deployed" in history
    from kubernetes import client

    deployment = client.AppsV1Api(cluster.api_client()).read_namespaced_deployment("rel-mindzoo-mlflow", ns)
    args = deployment.spec.template.spec.containers[0].args
    assert "--workers=2" in args, "the last upgrade's values replace the earlier --set"
    cluster.helm("uninstall", "rel", "-n", ns, "--wait", "--timeout", "2m")


@pytest.mark.parametrize("claims", ["Retain", "Delete"])
def test_uninstall_removes_what_the_chart_created(cluster, claims):
    ns = cluster.create_namespace(f"uninstall-{claims.lower()}")
    cluster.helm("install", "rel", str(CHART), "-n", ns, "--wait", "--timeout", "4m",
                 "--set", f"minio.persistence.whenDeleted={claims}",
                 "--set", f"postgresql.persistence.whenDeleted={claims}")
    cluster.helm("test", "rel", "-n", ns, "--timeout", "2m")
    assert len(owned(cluster, ns, "rel")) >= 9
    cluster.helm("uninstall", "rel", "-n", ns, "--wait", "--timeout", "2m")

    def only_kept_left():
        left = owned(cluster, ns, "rel")
        return (left,) if set(left) <= {"PersistentVolumeClaim", "Secret"} else None

    (left,) = cluster.wait_for("the release's objects to go", only_kept_left, 90)
    if claims == "Retain":  # the data, and the generated credentials that open it (resource-policy: keep)
        assert left == {"PersistentVolumeClaim": ["data-rel-mindzoo-minio-0", "data-rel-mindzoo-postgresql-0"],
                        "Secret": ["rel-mindzoo-minio", "rel-mindzoo-minio-tasks", "rel-mindzoo-postgresql"]}
    else:
        cluster.wait_for("the claims to go", lambda: not owned(cluster, ns, "rel"), 90)
    assert cluster.helm("list", "-n", ns, "-q", "--failed", "--pending", "--uninstalling").stdout.strip() == ""
    history = cluster.core().list_namespaced_secret(ns, label_selector="owner=helm,name=rel").items
    assert history == [], "helm uninstall must not keep the release's history"


def test_a_reinstall_reads_back_the_kept_secrets(cluster):
    """Uninstall keeps the generated Secrets with the retained data claims; installing the release again
    under its name adopts them (lookup reads them back) instead of generating new keys the old data would
    not open."""
    ns = cluster.create_namespace("reinstall")
    cluster.helm("install", "rel", str(CHART), "-n", ns, "--wait", "--timeout", "4m")
    before = secret_data(cluster, ns, "rel")
    cluster.helm("uninstall", "rel", "-n", ns, "--wait", "--timeout", "2m")
    assert secret_data(cluster, ns, "rel") == before
    cluster.helm("install", "rel", str(CHART), "-n", ns, "--wait", "--timeout", "4m")
    assert secret_data(cluster, ns, "rel") == before
    cluster.helm("uninstall", "rel", "-n", ns, "--wait", "--timeout", "2m")
