"""The launcher's Job and Service manifests (pure; the cluster tests create them for real)."""

from __future__ import annotations

import pytest

from mindzoo.errors import ConfigError
from mindzoo.launcher import LaunchSpec, Toleration, job_manifest, service_manifest
from mindzoo.launcher.spec import ENV_MASTER_ADDR, ENV_NODE_RANK, ENV_NUM_NODES


def ascend_spec(**kw):
    base = dict(
        name="train-abc", image="registry/mindzoo-ascend:0.1.0", command=("mindzoo", "train", "--workers", "8"),
        nodes=2, namespace="ml", resources={"huawei.com/Ascend910": "8"},
        node_selector={"accelerator": "huawei-Ascend910"}, tolerations=(Toleration("huawei.com/Ascend910"),),
        secret_env=("mindzoo-s3",), service_account="mindzoo-pipeline",
    )
    return LaunchSpec(**{**base, **kw})


def test_indexed_job_one_pod_per_node_replacing_only_disrupted_pods():
    job = job_manifest(ascend_spec(max_disruptions=2))
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (
        "Indexed", 2, 2, 2)
    # A disruption counts against backoffLimit (bounded retries); the worker's own non-zero exit fails the Job.
    assert spec["podFailurePolicy"]["rules"] == [
        {"action": "Count", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"containerName": "train", "operator": "NotIn", "values": [0]}}]
    assert spec["podReplacementPolicy"] == "Failed"
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["subdomain"] == "train-abc"
    assert pod["automountServiceAccountToken"] is False and pod["containers"][0]["name"] == "train"
    assert pod["nodeSelector"] == {"accelerator": "huawei-Ascend910"}
    assert pod["tolerations"] == [{"key": "huawei.com/Ascend910", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["serviceAccountName"] == "mindzoo-pipeline"
    container = pod["containers"][0]
    assert container["resources"]["requests"]["huawei.com/Ascend910"] == "8"
    assert container["resources"]["limits"]["huawei.com/Ascend910"] == "8"
    assert container["envFrom"] == [{"secretRef": {"name": "mindzoo-s3"}}]


def test_pods_learn_their_rank_and_the_master_address():
    env = {e["name"]: e for e in job_manifest(ascend_spec())["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env[ENV_NODE_RANK]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']")
    assert env[ENV_NUM_NODES]["value"] == "2"
    assert env[ENV_MASTER_ADDR]["value"] == "train-abc-0.train-abc.ml.svc"


def test_the_job_carries_the_digest_of_its_spec():
    digest = job_manifest(ascend_spec())["metadata"]["annotations"]["mindzoo.io/launch-spec-sha256"]
    assert digest == job_manifest(ascend_spec())["metadata"]["annotations"]["mindzoo.io/launch-spec-sha256"]
    assert len(digest) == 64 and digest != job_manifest(ascend_spec(nodes=3))["metadata"]["annotations"][
        "mindzoo.io/launch-spec-sha256"]


def test_headless_service_is_owned_by_the_job():
    svc = service_manifest(ascend_spec(), owner_uid="uid-1")
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["metadata"]["ownerReferences"][0] == {
        "apiVersion": "batch/v1", "kind": "Job", "name": "train-abc", "uid": "uid-1"}
    job_labels = job_manifest(ascend_spec())["spec"]["template"]["metadata"]["labels"]
    assert all(job_labels[k] == v for k, v in svc["spec"]["selector"].items())


@pytest.mark.parametrize("kw, key", [
    ({"name": "Bad_Name"}, "launch.name"),
    ({"nodes": 0}, "launch.nodes"),
    ({"port": 80}, "launch.port"),
    ({"command": ()}, "launch.command"),
    ({"max_disruptions": -1}, "launch.max_disruptions"),
])
def test_bad_specs_name_their_key(kw, key):
    with pytest.raises(ConfigError) as err:
        ascend_spec(**kw)
    assert err.value.key == key
