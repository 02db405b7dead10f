"""Fixtures of the cluster tests: a real kube-apiserver + etcd + controllers + kwok.

``cluster`` (session scope) is a :class:`kubeharness.Cluster` with kwok's fake nodes; ``real_cluster``
(session scope) one with a real node, where pods run (tests marked ``realnode``):

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

``trainer`` (session scope, on ``real_cluster``) adds Kubeflow Trainer's and JobSet's controllers and
webhooks (:class:`trainer.Controllers`; tests marked ``trainjob``).

``kfp_backend`` (session scope, on ``real_cluster``) adds Kubeflow Pipelines 2.17's backend with the chart in
its namespace (:class:`kfpbackend.Backend`; tests marked ``kfpbackend``, only in ``make test-e2e``).

``namespace`` gives each test a fresh restricted namespace. Tests of the cluster go
in this folder (``pytestmark = [pytest.mark.control, pytest.mark.cluster]``); if the
harness cannot start (tools not built, etcd missing, a process dies) every such test
fails with the reason: none is skipped.

Only the standard library is imported at module level: this conftest is also loaded
by the runtime environment's pytest run, which has no ``kubernetes`` package.
"""

from __future__ import annotations

import json
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


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A control plane with one real node (containerd + kubelet + kube-proxy + CoreDNS) where pods really
    run, started once per test session (tests marked ``realnode``). The CPU runtime image and the pause
    image are in its containerd. Fails, never skips, when it cannot start."""
    import kubeharness
    from components.images import CPU

    import signal

    def interrupt(signum, frame):  # SIGTERM (a CI time-out) unwinds like Ctrl-C: the node is stopped and put back
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    workdir = tmp_path_factory.mktemp("realnode")
    try:
        running = kubeharness.Cluster.start(workdir, real_node=True)
        running.images().ensure(CPU)
    except kubeharness.HarnessError as exc:
        signal.signal(signal.SIGTERM, previous)
        pytest.fail(f"the real-node cluster did not start: {exc}", pytrace=False)
    try:
        yield running
    finally:
        signal.signal(signal.SIGTERM, previous)
        problems = running.stop()
        if problems:
            pytest.fail("the real node left things behind:\n  " + "\n  ".join(problems), pytrace=False)


def install_chart(real_cluster, namespace: str, *settings: str) -> dict:
    """charts/mindzoo installed on the real node in its default mode (bundled MinIO + PostgreSQL + MLflow) as
    release ``mindzoo`` in the existing ``namespace``, every pod Ready, with extra ``--set`` ``settings``. Its
    images are built locally and imported (tests/cluster/chartimages.py); PostgreSQL is a stand-in built from
    Debian's postgresql under the official image's name, since no registry here serves the official one.

    Returns a dict: ``namespace``, ``release``, ``service_account``, ``defaults`` (the pipeline-defaults
    ConfigMap) and ``minio`` (``service``; endpoint host:port reachable from this machine, access key, secret
    key: the root user's).
    """
    import base64

    import chartimages
    from kubeharness import HarnessError

    try:
        images = real_cluster.images()
        for name in chartimages.build_all(real_cluster.tools).values():
            images.ensure(name)
    except HarnessError as exc:
        pytest.fail(f"the chart's images could not be built for the real node: {exc}", pytrace=False)
    real_cluster.add_host_path_volumes(4)
    sets = [arg for setting in settings for arg in ("--set", setting)]
    real_cluster.helm("install", "mindzoo", str(chartimages.CHART), "--namespace", namespace, *sets, "--wait",
                      "--timeout", "8m", timeout=600)
    core = real_cluster.core()
    defaults = core.read_namespaced_config_map("mindzoo-pipeline-defaults", namespace).data
    secret = core.read_namespaced_secret("mindzoo-minio", namespace).data
    service = core.read_namespaced_service("mindzoo-minio", namespace).spec
    port = next(p.port for p in service.ports if p.port == 9000)
    return {"namespace": namespace, "release": "mindzoo", "service_account": defaults["MINDZOO_SERVICE_ACCOUNT"],
            "defaults": defaults, "minio": {"service": "mindzoo-minio", "endpoint": f"{service.cluster_ip}:{port}",
                                            "access_key": base64.b64decode(secret["accesskey"]).decode(),
                                            "secret_key": base64.b64decode(secret["secretkey"]).decode()}}


@pytest.fixture(scope="session")
def real_release(real_cluster):
    """charts/mindzoo installed on the real node (:func:`install_chart`) in namespace ``mindzoo`` (restricted)."""
    return install_chart(real_cluster, real_cluster.create_namespace("mindzoo"))


def ensure_kfp_namespace(real_cluster) -> str:
    """KFP's namespace on the real node (not "restricted": upstream runs KFP's pods there without that
    label), created once per session."""
    from kfpbackend import NAMESPACE

    names = {n.metadata.name for n in real_cluster.core().list_namespace().items}
    return NAMESPACE if NAMESPACE in names else real_cluster.create_namespace(NAMESPACE, restricted=False)


@pytest.fixture(scope="session")
def kfp_backend(real_cluster):
    """Kubeflow Pipelines 2.17's backend on the real node (:class:`kfpbackend.Backend`; tests marked
    ``kfpbackend``), with the mindzoo chart installed in KFP's namespace ``kubeflow``, where single-user KFP
    runs its pipelines: the chart's pipeline Role is bound to KFP's ``pipeline-runner`` ServiceAccount (runs
    go as that), and its MinIO is KFP's artifact store too. Returns ``(backend, release)``: ``release`` as
    :func:`install_chart` returns it. Fails, never skips, when it cannot start; leaves nothing behind."""
    from kfpbackend import NAMESPACE, RUNNER, Backend
    from procs import HarnessError

    namespace = ensure_kfp_namespace(real_cluster)
    release = install_chart(real_cluster, namespace, "pipeline.serviceAccount.create=false",
                            f"pipeline.serviceAccount.name={RUNNER}")
    try:
        backend = Backend.start(real_cluster, real_cluster.workdir / "kfp", store=release["minio"])
    except HarnessError as exc:
        pytest.fail(f"the Kubeflow Pipelines backend did not start: {exc}", pytrace=False)
    # The operator guide's section 2, step 3: KFP's launcher reads s3:// URIs (infer_pipeline's importers) from
    # the chart's MinIO with the tasks' keys; KFP's own pipeline root stays in its store.
    tasks_secret = release["defaults"]["MINDZOO_S3_SECRET"]
    real_cluster.core().patch_namespaced_config_map("kfp-launcher", namespace, {"data": {"providers": json.dumps({
        "s3": {"default": {"endpoint": f"{release['minio']['service']}.{namespace}.svc:9000", "disableSSL": True,
                           "region": "us-east-1", "forcePathStyle": True,
                           "credentials": {"fromEnv": False, "secretRef": {
                               "secretName": tasks_secret, "accessKeyKey": release["defaults"]["MINDZOO_S3_ACCESS_KEY_KEY"],
                               "secretKeyKey": release["defaults"]["MINDZOO_S3_SECRET_KEY_KEY"]}}}}
    })}})
    try:
        yield backend, release
    finally:
        problems = backend.stop()
        if problems:
            pytest.fail("the Kubeflow Pipelines backend left things behind:\n  " + "\n  ".join(problems),
                        pytrace=False)


@pytest.fixture(scope="module")
def trainer_crds(cluster) -> Iterator[None]:
    """Kubeflow Trainer v2.3.0's CRDs (from the Go module cache, tests/trainerapi.py) on the kwok cluster, for
    one test module: no Trainer controller and no webhook, so the API server validates TrainJobs and runtimes
    against the CRD schemas and nothing acts on them. Removed at the module's end: other modules test a
    cluster without them."""
    import trainerapi

    created = trainerapi.apply_crds(cluster.api_client(), trainerapi.crd_files())
    try:
        yield
    finally:
        problems = trainerapi.remove_crds(cluster.api_client(), created)
        assert not problems, problems


@pytest.fixture(scope="session")
def trainer(real_cluster):
    """Kubeflow Trainer and JobSet controllers (:class:`trainer.Controllers`) on the real-node cluster, started
    once per session (tests marked ``trainjob``): their CRDs, webhooks and controllers, so TrainJobs become
    JobSets whose pods run. Fails, never skips, when they cannot start; leaves nothing behind when it stops."""
    from procs import HarnessError
    from trainer import Controllers

    try:
        # Under the cluster's workdir: the controllers' command lines name it, so the real node's clean-up
        # of a killed session (hoststate.clean_stale) finds them with its other processes.
        running = Controllers.start(real_cluster, real_cluster.workdir / "trainer")
    except HarnessError as exc:
        pytest.fail(f"the Trainer and JobSet controllers did not start: {exc}", pytrace=False)
    try:
        yield running
    finally:
        problems = running.stop()
        if problems:
            pytest.fail("the Trainer and JobSet controllers left things behind:\n  " + "\n  ".join(problems),
                        pytrace=False)
