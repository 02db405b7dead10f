"""`--launch-kind trainjob` against the real API server of the kwok cluster. Without Kubeflow Trainer's CRDs,
a TrainJob launch is one error line and creates nothing, and the chart refuses to render its runtimes. With
Trainer v2.3.0's CRDs applied from the Go module cache (``trainer_crds``: no Trainer controller, no webhook,
so only the CRD schemas and their CEL rules judge), the API server takes the chart's two
ClusterTrainingRuntimes (rendered by Helm against this server's discovery) and the launcher's TrainJob with
strict field validation: no field is unknown or pruned. Running them (Trainer, JobSet, pods) is the real-node
`trainjob` tests' part; the launcher's calls on its TrainJob are recorded in test_launcher.py."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from mindzoo.launcher import LaunchSpec, Toleration
from mindzoo.launcher.run import LaunchRefused, launch

pytestmark = [pytest.mark.control, pytest.mark.cluster]

CHART = Path(__file__).resolve().parents[2] / "charts" / "mindzoo"
GROUP, VERSION = "trainer.kubeflow.org", "v1alpha1"


def gpu_spec(ns: str, pool: dict, **kw) -> LaunchSpec:
    base = dict(
        name=f"tj-{uuid.uuid4().hex[:6]}", image="localhost/mindzoo-gpu:0.1.0", kind="trainjob",
        runtime="mindzoo-mindspore", command=("mindzoo", "launch", "node", "--workers", "1", "--", "train"),
        nodes=2, namespace=ns, resources={pool["resource"]: "1"}, node_selector=pool.get("nodeSelector") or {},
        tolerations=tuple(Toleration(t["key"]) for t in pool.get("tolerations") or []), timeout_s=120,
        queue="team-a", pod_labels={"team": "vision"})
    return LaunchSpec(**{**base, **kw})


def render_runtimes(cluster, check: bool = True):
    return cluster.helm("template", "rel", str(CHART), "--dry-run=server", "--set", "trainer.runtimes.enabled=true",
                        "--set-json", 'trainer.podGroupPolicy={"coscheduling":{"scheduleTimeoutSeconds":120}}',
                        "--show-only", "templates/trainer/clustertrainingruntime.yaml", check=check)


def kept(made, sent) -> bool:
    """Everything sent is in what the API server made of it (it may add its defaults, never drop a field)."""
    if isinstance(sent, dict):
        return isinstance(made, dict) and all(k in made and kept(made[k], v) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(made, list) and len(made) == len(sent) and all(map(kept, made, sent))
    return made == sent


def test_without_trainers_crds_a_trainjob_launch_is_one_line_and_creates_nothing(cluster, mindzoo_release):
    from kubernetes import client

    ns, sa = mindzoo_release["namespace"], mindzoo_release["service_account"]
    names = {c.metadata.name for c in client.ApiextensionsV1Api(cluster.api_client())
             .list_custom_resource_definition().items}
    assert f"trainjobs.{GROUP}" not in names  # the module's premise: this cluster has no Trainer
    spec = gpu_spec(ns, mindzoo_release["defaults"]["MINDZOO_NODE_POOLS"]["gpu"])
    pods_before = {p.metadata.name for p in cluster.core().list_namespaced_pod(ns).items}
    with pytest.raises(LaunchRefused) as err:
        launch(spec, cluster.impersonate(ns, sa), say=lambda line: None, poll_s=0.3)
    line = str(err.value)
    assert "\n" not in line and f"cannot create trainjob {ns}/{spec.name}" in line
    assert "Kubeflow Trainer v2.3.0's CRDs and controller" in line and "--launch-kind job" in line
    assert {p.metadata.name for p in cluster.core().list_namespaced_pod(ns).items} == pods_before
    assert spec.name not in {j.metadata.name for j in cluster.batch().list_namespaced_job(ns).items}


def test_without_trainers_crds_the_chart_refuses_to_render_the_runtimes(cluster):
    proc = render_runtimes(cluster, check=False)
    assert proc.returncode != 0
    assert "install Kubeflow Trainer v2.3.0's CRDs and controller first" in proc.stderr, proc.stderr


def test_the_api_server_takes_the_charts_runtimes_and_the_launchers_trainjob_as_they_are(
        cluster, mindzoo_release, trainer_crds):
    import yaml
    from kubernetes import client

    from mindzoo.launcher.trainjob import trainjob_manifest

    custom = client.CustomObjectsApi(cluster.api_client())
    runtimes = [d for d in yaml.safe_load_all(render_runtimes(cluster).stdout) if d]
    assert {r["metadata"]["name"] for r in runtimes} == {"mindzoo-mindspore", "mindzoo-torch"}
    created = []
    try:
        for runtime in runtimes:
            made = custom.create_cluster_custom_object(GROUP, VERSION, "clustertrainingruntimes", runtime,
                                                       field_validation="Strict")
            created.append(runtime["metadata"]["name"])
            assert kept(made["spec"], runtime["spec"]), made["spec"]
        ns = mindzoo_release["namespace"]
        for runtime in ("mindzoo-mindspore", "mindzoo-torch"):
            job = trainjob_manifest(gpu_spec(ns, mindzoo_release["defaults"]["MINDZOO_NODE_POOLS"]["gpu"],
                                             runtime=runtime))
            made = custom.create_namespaced_custom_object(GROUP, VERSION, ns, "trainjobs", job,
                                                          field_validation="Strict")
            try:
                assert kept(made["spec"], job["spec"]), made["spec"]
                assert made["metadata"]["labels"] == job["metadata"]["labels"]
            finally:
                custom.delete_namespaced_custom_object(GROUP, VERSION, ns, "trainjobs", job["metadata"]["name"])
    finally:
        for name in created:
            custom.delete_cluster_custom_object(GROUP, VERSION, "clustertrainingruntimes", name)


def test_a_trainjob_launch_streams_rank0_and_cleans_up(cluster, mindzoo_release, trainer_crds):
    """With TrainerStandIn playing Trainer and JobSet (their controllers run on the real node's tests): the
    launcher finds the workers by JobSet's label, follows pod 0's log and deletes the TrainJob at the end."""
    from launcher_objects import PROGRESS_LOG, TrainerStandIn

    ns, sa = mindzoo_release["namespace"], mindzoo_release["service_account"]
    pool = mindzoo_release["defaults"]["MINDZOO_NODE_POOLS"]["gpu"]
    spec = gpu_spec(ns, pool)
    said = []
    with cluster.pod_logs(ns, PROGRESS_LOG, container="node"), \
            TrainerStandIn(cluster.api_client(), ns, spec.name, pool=pool):
        result = launch(spec, cluster.impersonate(ns, sa), say=said.append, poll_s=0.3)
        cluster.wait_for("rank 0's log", lambda: f"[rank0] {PROGRESS_LOG[-1]}" in said)
    assert result.succeeded == 2 and not result.adopted
    assert said[0] == f"launched trainjob {ns}/{spec.name}: 2 node(s), image localhost/mindzoo-gpu:0.1.0"
    custom = cluster.custom()
    cluster.wait_for("the TrainJob and its workers gone", lambda: not custom.list_namespaced_custom_object(
        GROUP, VERSION, ns, "trainjobs")["items"] and not cluster.core().list_namespaced_pod(
        ns, label_selector=f"jobset.sigs.k8s.io/jobset-name={spec.name}").items)


def test_a_failing_worker_fails_the_trainjob_launch_with_its_rank_pod_and_log_tail(cluster, mindzoo_release,
                                                                                  trainer_crds):
    from launcher_objects import FAILING_LOG, TrainerStandIn

    from mindzoo.launcher.run import LaunchFailed

    ns, sa = mindzoo_release["namespace"], mindzoo_release["service_account"]
    pool = mindzoo_release["defaults"]["MINDZOO_NODE_POOLS"]["gpu"]
    spec = gpu_spec(ns, pool)
    with cluster.pod_logs(ns, FAILING_LOG, container="node"), \
            TrainerStandIn(cluster.api_client(), ns, spec.name, pool=pool, fail=True):
        with pytest.raises(LaunchFailed) as err:
            launch(spec, cluster.impersonate(ns, sa), say=lambda line: None, poll_s=0.3)
    message = str(err.value)
    assert message.startswith(f"worker 0 ({spec.name}-node-0-0-"), message
    assert message.endswith(" | ".join(FAILING_LOG[-5:])), message
