"""Fixtures of the cluster tests: a real kube-apiserver + etcd + controllers + kwok.

``cluster`` (session scope) is a :class:`kubeharness.Cluster`:

* ``cluster.kubeconfig`` - admin kubeconfig path (``KUBECONFIG=... helm/kubectl``);
* ``cluster.api_client()`` - a ``kubernetes.client.ApiClient`` as cluster admin;
  ``cluster.core()`` / ``cluster.batch()`` wrap one in CoreV1Api / BatchV1Api;
* ``cluster.impersonate(namespace, service_account)`` - an ApiClient acting as that
  ServiceAccount (Impersonate-User), RBAC applies exactly as to the SA's own token;
  ``cluster.service_account_client(...)`` uses a real token from the TokenRequest API;
* ``cluster.helm("install", ...)`` - Helm against this cluster;
* ``cluster.create_namespace(name)`` - a namespace enforcing the "restricted"
  Pod Security Standard; ``cluster.wait_for(what, check)`` - poll with diagnostics;
* ``kubeharness.NODES`` - the fake nodes (Ascend 910/310, GPU, CPU) kwok runs, and
  ``kubeharness.FAIL_LABEL`` - label a pod ``"true"`` and kwok fails it.
* ``with cluster.pod_logs(namespace, lines):`` - kwok serves ``lines`` as the log of
  that namespace's pods, through the API server's ``pods/log`` (tail, follow, ...).

``namespace`` gives each test a fresh restricted namespace. Tests of the cluster go
in this folder (``pytestmark = [pytest.mark.control, pytest.mark.cluster]``); if the
harness cannot start (tools not built, etcd missing, a process dies) every such test
fails with the reason: none is skipped.

Only the standard library is imported at module level: this conftest is also loaded
by the runtime environment's pytest run, which has no ``kubernetes`` package.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator["kubeharness.Cluster"]:  # noqa: F821
    """The real control plane, started once per test session."""
    import kubeharness

    workdir = tmp_path_factory.mktemp("cluster")
    try:
        running = kubeharness.Cluster.start(workdir)
    except kubeharness.HarnessError as exc:
        pytest.fail(f"the cluster test harness did not start: {exc}", pytrace=False)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def namespace(cluster) -> str:
    """A fresh namespace enforcing the "restricted" Pod Security Standard."""
    return cluster.create_namespace(f"t-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def mindzoo_release(cluster):
    """charts/mindzoo installed once (default values) in namespace ``mindzoo``: the
    pipeline ServiceAccount, its launcher Role and the pipeline-defaults ConfigMap are
    what pipeline tasks (and the distributed launcher) use.

    Returns a dict: ``namespace``, ``release``, ``service_account`` and ``defaults``
    (the pipeline-defaults ConfigMap's data, ``MINDZOO_NODE_POOLS`` parsed).
    """
    import json

    chart = Path(__file__).resolve().parents[2] / "charts" / "mindzoo"
    namespace = cluster.create_namespace("mindzoo")
    cluster.helm("install", "mindzoo", str(chart), "--namespace", namespace, "--wait", "--timeout", "5m")
    data = cluster.core().read_namespaced_config_map("mindzoo-pipeline-defaults", namespace).data
    return {"namespace": namespace, "release": "mindzoo", "service_account": data["MINDZOO_SERVICE_ACCOUNT"],
            "defaults": {**data, "MINDZOO_NODE_POOLS": json.loads(data["MINDZOO_NODE_POOLS"])}}
