"""charts/mindzoo's Kubeflow Trainer v2.3.0 ClusterTrainingRuntimes, rendered with the real Helm: off by
default, refused with one line where the cluster lacks Trainer's API, and otherwise two runtimes that
kubeconform validates (strict) against JSON schemas made at test time from Trainer's own CRDs (tests/
trainerapi.py) - together with the TrainJob the launcher builds. `helm lint` has no --api-versions, so it
never renders them (the Capabilities check fails its render); it parses the template in
test_chart_render.py. The real API server validates both again in tests/cluster/test_launcher_trainjob.py."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from components.images import NAMES

from chartkit import by_kind, one

pytestmark = [pytest.mark.control]

API = "trainer.kubeflow.org/v1alpha1/ClusterTrainingRuntime"
ON = {"trainer": {"runtimes": {"enabled": True}}}


def runtimes(chart, values=None):
    docs = chart.template({**ON, **(values or {})}, api_versions=(API,))
    return {d["metadata"]["name"]: d for d in by_kind(docs, "ClusterTrainingRuntime")}


def node_pod(runtime):
    (node,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    assert node["name"] == "node" and node["replicas"] == 1
    assert node["template"]["metadata"]["labels"] == {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}
    assert node["template"]["spec"]["backoffLimitPerIndex"] == node["template"]["spec"]["maxFailedIndexes"] == 0
    return node["template"]["spec"]["template"]["spec"]


def test_no_runtimes_unless_asked_for(chart):
    assert by_kind(chart.template(api_versions=(API,)), "ClusterTrainingRuntime") == []


def test_asked_for_without_trainers_api_is_one_line_saying_what_to_install(chart):
    error = chart.template_error(ON)
    assert "install Kubeflow Trainer v2.3.0's CRDs and controller first" in error
    assert "manifests/overlays/manager?ref=v2.3.0" in error


def test_both_runtimes_run_restricted_pods_that_fail_the_trainjob_at_once(chart):
    found = runtimes(chart)
    assert set(found) == {"mindzoo-mindspore", "mindzoo-torch"}
    for runtime in found.values():
        spec = runtime["spec"]["template"]["spec"]
        assert spec["failurePolicy"] == {"maxRestarts": 0}
        assert spec["successPolicy"] == {"operator": "All", "targetReplicatedJobs": ["node"]}
        pod = node_pod(runtime)
        assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
        assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
        (container,) = pod["containers"]
        # The chart's default is the CPU image as components/images.py names it (podman's local name).
        assert container["name"] == "node" and container["image"] == f"localhost/{NAMES['cpu']}"
        assert container["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
        assert pod["volumes"] == [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}]
        assert container["volumeMounts"] == [{"name": "dshm", "mountPath": "/dev/shm"}]
        assert "podGroupPolicy" not in runtime["spec"]


def test_the_mindspore_runtime_gives_the_rank_and_port_and_the_torch_one_trainers_policy(chart):
    found = runtimes(chart, {"trainer": {"runtimes": {"enabled": True, "port": 9000}}})
    mindspore, torch = found["mindzoo-mindspore"], found["mindzoo-torch"]
    assert mindspore["spec"]["mlPolicy"] == {"numNodes": 1}  # Trainer's plain-ML policy
    env = {e["name"]: e for e in node_pod(mindspore)["containers"][0]["env"]}
    assert env["MINDZOO_NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']")
    assert env["MINDZOO_MASTER_PORT"]["value"] == "9000"
    assert torch["spec"]["mlPolicy"] == {"numNodes": 1, "torch": {}}
    assert "env" not in node_pod(torch)["containers"][0]  # Trainer injects PET_*


@pytest.mark.parametrize("policy", [{"volcano": {}}, {"coscheduling": {"scheduleTimeoutSeconds": 120}}])
def test_the_gang_scheduling_policy_is_copied_into_both_runtimes(chart, policy):
    found = runtimes(chart, {"trainer": {"runtimes": {"enabled": True}, "podGroupPolicy": policy}})
    assert all(r["spec"]["podGroupPolicy"] == policy for r in found.values())


def test_a_policy_of_two_schedulers_is_refused_by_the_values_schema(chart):
    error = chart.template_error({**ON, "trainer": {"runtimes": {"enabled": True},
                                                    "podGroupPolicy": {"volcano": {}, "coscheduling": {}}}})
    assert "podGroupPolicy" in error


def test_kubeconform_validates_the_runtimes_and_the_launchers_trainjob_against_trainers_crds(chart, tmp_path):
    from test_chart_validators import tool

    import trainerapi
    from mindzoo.launcher import LaunchSpec, Toleration
    from mindzoo.launcher.spec import SecretKeyEnv
    from mindzoo.launcher.trainjob import trainjob_manifest

    location = trainerapi.json_schemas(tmp_path / "schemas")
    docs = list(runtimes(chart, {"trainer": {"runtimes": {"enabled": True}, "podGroupPolicy": {"volcano": {}}}})
                .values())
    docs.append(trainjob_manifest(LaunchSpec(
        name="mz-run-abc", image="localhost/mindzoo-gpu:0.1.0", command=("mindzoo", "launch", "node"), nodes=2,
        kind="trainjob", runtime="mindzoo-torch", queue="team-a", resources={"nvidia.com/gpu": "1"},
        node_selector={"pool": "gpu"}, tolerations=(Toleration("nvidia.com/gpu"),), service_account="workers",
        secret_keys=(SecretKeyEnv("AWS_ACCESS_KEY_ID", "s3", "accesskey"),), pod_labels={"team": "vision"})))
    rendered = tmp_path / "trainer.yaml"
    rendered.write_text(yaml.safe_dump_all(docs))
    proc = subprocess.run([str(tool("kubeconform")), "-strict", "-summary", "-output", "json", "-schema-location",
                           location, str(rendered)], capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, json.dumps(report.get("resources"), indent=1)[:4000]
    assert report["summary"]["valid"] == 3 and report["summary"]["skipped"] == 0, report["summary"]


def test_a_broken_runtime_fails_the_same_validation(chart, tmp_path):
    """The schemas are really applied: a misspelt field is an error, not a pass."""
    from test_chart_validators import tool

    import trainerapi

    location = trainerapi.json_schemas(tmp_path / "schemas")
    runtime = runtimes(chart)["mindzoo-torch"]
    runtime["spec"]["mlPolicy"]["torch"] = {"numProcsPerNode": 1}
    rendered = tmp_path / "broken.yaml"
    rendered.write_text(yaml.safe_dump(runtime))
    proc = subprocess.run([str(tool("kubeconform")), "-strict", "-output", "json", "-schema-location", location,
                           str(rendered)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "numProcsPerNode" in proc.stdout, proc.stdout


def test_the_runtimes_labels_name_the_release(chart):
    runtime = one(chart.template(ON, api_versions=(API,)), "ClusterTrainingRuntime", "-torch")
    assert runtime["metadata"]["labels"]["app.kubernetes.io/instance"] == "rel"
    assert runtime["metadata"]["labels"]["trainer.kubeflow.org/framework"] == "torch"
