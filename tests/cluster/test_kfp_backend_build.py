"""What ``make kfp-backend`` and ``make kfp-images`` build for the Kubeflow Pipelines backend
(issue #21), checked against the real control plane and the real node: KFP's manifests render
from its source with the Argo references made local and the local images named, and the objects
a backend needs are accepted by the real API server; the kfp-driver, kfp-launcher and argoexec
images import into the node's containerd and their programs run there as upstream's non-root
users. Only in ``make test-e2e`` (marker kfpbackend).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

import kfpbuild
import kfpmanifests

pytestmark = [pytest.mark.control, pytest.mark.cluster, pytest.mark.kfpbackend]

#: Objects the harness applies; the Deployments' programs run as host processes.
CONTROL_KINDS = {"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Secret",
                 "Service", "CustomResourceDefinition", "PriorityClass"}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> list[dict]:
    return kfpmanifests.render(tmp_path_factory.mktemp("kfp-manifests"), kustomize=kfpbuild.binary("kustomize"),
                               source=kfpbuild.kfp_source(), argo_version=kfpbuild.argo_version(),
                               images=kfpbuild.built_images())


def _named(objects: list[dict], kind: str) -> set[str]:
    return {o["metadata"]["name"] for o in objects if o["kind"] == kind}


def test_manifests_render_from_the_source_with_local_argo_and_images(rendered):
    assert {"workflows.argoproj.io", "workflowtaskresults.argoproj.io",
            "scheduledworkflows.kubeflow.org"} <= _named(rendered, "CustomResourceDefinition")
    assert {"pipeline-runner", "ml-pipeline", "ml-pipeline-persistenceagent", "argo"} <= _named(rendered, "ServiceAccount")
    assert {"kfp-launcher", "metadata-grpc-configmap", "workflow-controller-configmap",
            "pipeline-install-config"} <= _named(rendered, "ConfigMap")
    namespaced = [o for o in rendered if o["kind"] not in ("CustomResourceDefinition", "ClusterRole",
                                                             "ClusterRoleBinding", "PriorityClass")]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"kubeflow"}
    text = repr(rendered)
    images = kfpbuild.built_images()
    for upstream in kfpmanifests.UPSTREAM_IMAGES:
        assert upstream not in text
    apiserver = next(o for o in rendered if o["kind"] == "Deployment" and o["metadata"]["name"] == "ml-pipeline")
    env = {e["name"]: e.get("value") for e in apiserver["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    assert (env["V2_DRIVER_IMAGE"], env["V2_LAUNCHER_IMAGE"]) == (images["driver"], images["launcher"])
    controller = next(o for o in rendered if o["kind"] == "Deployment" and o["metadata"]["name"] == "workflow-controller")
    args = controller["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--executor-image") + 1] == images["argoexec"]


def test_the_real_api_server_accepts_the_backends_objects(cluster, rendered):
    from kubernetes import utils

    objects = [o for o in rendered if o["kind"] in CONTROL_KINDS]
    assert len(objects) > 20
    cluster.create_namespace("kubeflow")
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    client = cluster.api_client()
    utils.create_from_yaml(client, yaml_objects=crds)
    utils.create_from_yaml(client, yaml_objects=[o for o in objects if o not in crds])
    runner = cluster.core().read_namespaced_service_account("pipeline-runner", "kubeflow")
    assert runner.metadata.name == "pipeline-runner"


@pytest.mark.realnode
def test_the_images_import_and_their_programs_run_on_the_real_node(real_cluster):
    from nodeimages import engine_image_id

    images = real_cluster.images()
    names = kfpbuild.import_all(images)
    for name in names.values():
        assert images.imported_id(name) == engine_image_id(real_cluster.tools, name)
    ns = real_cluster.create_namespace(f"k-{uuid.uuid4().hex[:8]}")
    core = real_cluster.core()
    commands = {"driver": ["driver", "--help"], "launcher": ["launcher-v2", "--help"],
                "argoexec": ["argoexec", "version"]}
    for key, command in commands.items():
        core.create_namespaced_pod(ns, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": key},
            "spec": {"restartPolicy": "Never", "automountServiceAccountToken": False, "containers": [{
                "name": "main", "image": names[key], "imagePullPolicy": "Never", "command": command,
                "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                                    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}]}})
    for key in commands:
        pod = real_cluster.wait_for(f"pod {key} finished", lambda k=key: (
            p if (p := core.read_namespaced_pod(k, ns)).status.phase in ("Succeeded", "Failed") else None), 180)
        log = core.read_namespaced_pod_log(key, ns)
        assert pod.status.phase == "Succeeded", log
    assert kfpbuild.argo_version() in core.read_namespaced_pod_log("argoexec", ns)


@pytest.mark.realnode
def test_a_backend_that_fails_to_start_leaves_nothing_behind(real_cluster, tmp_path):
    """The start fails after MariaDB runs and KFP's objects are applied (the object store's Service does not
    exist): the error names it, and the processes, files and objects are gone, so the next start is clean."""
    from conftest import ensure_kfp_namespace
    from kfpbackend import NAMESPACE, TOKEN_FILE, Backend
    from procs import HarnessError

    ensure_kfp_namespace(real_cluster)
    before = {(o.metadata.name) for o in real_cluster.core().list_namespaced_service_account(NAMESPACE).items}
    with pytest.raises(HarnessError, match="no-such-minio"):
        Backend.start(real_cluster, tmp_path, store={"service": "no-such-minio", "access_key": "a", "secret_key": "b"})
    after = {(o.metadata.name) for o in real_cluster.core().list_namespaced_service_account(NAMESPACE).items}
    assert after == before
    from kubernetes import client

    crds = {c.metadata.name for c in client.ApiextensionsV1Api(real_cluster.api_client())
            .list_custom_resource_definition().items}
    assert not {n for n in crds if n.endswith(("argoproj.io", "kubeflow.org"))}
    assert not TOKEN_FILE.exists()
    assert not list(Path("/tmp").glob(f"mindzoo-mariadb-{os.getpid()}.sock"))
    assert not [line for line in subprocess.run(["pgrep", "-af", str(tmp_path)], capture_output=True,
                                                text=True).stdout.splitlines() if "pgrep" not in line]
