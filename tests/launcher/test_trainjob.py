"""The launcher's TrainJob (Kubeflow Trainer v2.3.0; pure: tests/cluster/test_launcher_trainjob.py has the real
API server validate it against the CRD schema), its refusals mapped to one line, and the Kueue label of both
kinds. The webhook texts below are Trainer v2.3.0's own (pkg/runtime/core/clustertrainingruntime.go) as the API
server wraps a validating webhook's denial; the real webhook is exercised by the `trainjob` tests on the real node."""

from __future__ import annotations

import json

import pytest

from mindzoo.errors import ConfigError
from mindzoo.launcher import LaunchSpec, Toleration, job_manifest
from mindzoo.launcher.kinds import refused
from mindzoo.launcher.node import NodeEnv
from mindzoo.launcher.spec import ENV_MASTER_ADDR, ENV_MASTER_PORT, ENV_NODE_RANK, ENV_NUM_NODES, SecretKeyEnv
from mindzoo.launcher.trainjob import trainjob_manifest

NETWORK_POLICY_WORKERS = {"app.kubernetes.io/name": "mindzoo", "app.kubernetes.io/component": "train"}


def gpu_spec(**kw):
    base = dict(
        name="mz-run-1-abcdef12", image="registry/mindzoo-gpu:0.1.0", nodes=2, namespace="ml", kind="trainjob",
        runtime="mindzoo-mindspore", command=("mindzoo", "launch", "node", "--workers", "2", "--result",
                                              "s3://b/r/launch/result.json", "--", "train", "--device", "gpu"),
        resources={"nvidia.com/gpu": "2"}, node_selector={"pool": "gpu"}, tolerations=(Toleration("nvidia.com/gpu"),),
        env={"MINDZOO_S3_ENDPOINT": "minio:9000"}, secret_keys=(SecretKeyEnv("AWS_ACCESS_KEY_ID", "s3", "accesskey"),),
        service_account="mindzoo-workers", pod_labels={"team": "vision"}, timeout_s=3600,
    )
    return LaunchSpec(**{**base, **kw})


def pod_patch(job):
    (patch,) = job["spec"]["runtimePatches"]
    assert patch["manager"] == "mindzoo.io/launcher"
    (node,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    assert node["name"] == "node"
    return node["template"]["spec"]["template"]


def test_the_trainjob_runs_the_same_command_image_and_resources_as_the_job():
    spec = gpu_spec()
    job, indexed = trainjob_manifest(spec), job_manifest(spec)
    container = indexed["spec"]["template"]["spec"]["containers"][0]
    assert (job["apiVersion"], job["kind"], job["metadata"]["name"]) == (
        "trainer.kubeflow.org/v1alpha1", "TrainJob", indexed["metadata"]["name"])
    assert job["spec"]["runtimeRef"] == {"name": "mindzoo-mindspore", "apiGroup": "trainer.kubeflow.org",
                                         "kind": "ClusterTrainingRuntime"}
    trainer = job["spec"]["trainer"]
    assert (trainer["image"], trainer["command"], trainer["numNodes"]) == (
        container["image"], container["command"], 2)
    assert trainer["resourcesPerNode"] == container["resources"]
    assert job["spec"]["activeDeadlineSeconds"] == 3600


def test_trainer_env_is_the_jobs_minus_what_the_runtime_gives():
    """The runtime sets the rank (from the completion index) and the port; the launcher adds the node count and
    pod 0's name: `<trainjob>-node-0-0.<trainjob>`, JobSet's pod and headless Service."""
    job, indexed = trainjob_manifest(gpu_spec()), job_manifest(gpu_spec())
    env = {e["name"]: e for e in job["spec"]["trainer"]["env"]}
    job_env = {e["name"]: e for e in indexed["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert set(job_env) - set(env) == {ENV_NODE_RANK, ENV_MASTER_PORT}
    assert env[ENV_MASTER_ADDR]["value"] == "mz-run-1-abcdef12-node-0-0.mz-run-1-abcdef12.ml.svc"
    assert env[ENV_NUM_NODES]["value"] == "2"
    assert env["AWS_ACCESS_KEY_ID"] == job_env["AWS_ACCESS_KEY_ID"]  # a secretKeyRef, never a value
    assert not any(name.startswith("PET_") for name in env)  # Trainer's torch webhook rejects those


def test_the_runtime_patch_places_the_pods_like_the_jobs_and_labels_them_for_the_network_policy():
    job, indexed = trainjob_manifest(gpu_spec()), job_manifest(gpu_spec())
    template, pod = pod_patch(job), indexed["spec"]["template"]["spec"]
    assert template["spec"] == {"nodeSelector": pod["nodeSelector"], "tolerations": pod["tolerations"],
                                "serviceAccountName": "mindzoo-workers"}
    assert template["metadata"]["labels"] == indexed["spec"]["template"]["metadata"]["labels"]
    assert NETWORK_POLICY_WORKERS.items() <= template["metadata"]["labels"].items()
    assert template["metadata"]["labels"]["team"] == "vision"


def test_a_plain_cpu_trainjob_patches_only_labels():
    template = pod_patch(trainjob_manifest(gpu_spec(resources={}, node_selector={}, tolerations=(),
                                                    service_account=None)))
    assert set(template) == {"metadata"}


def test_the_queue_label_goes_on_both_kinds_and_their_pods():
    queue = {"kueue.x-k8s.io/queue-name": "team-a"}
    job, indexed = trainjob_manifest(gpu_spec(queue="team-a")), job_manifest(gpu_spec(queue="team-a"))
    assert queue.items() <= job["metadata"]["labels"].items()
    assert queue.items() <= pod_patch(job)["metadata"]["labels"].items()
    assert queue.items() <= indexed["metadata"]["labels"].items()
    assert queue.items() <= indexed["spec"]["template"]["metadata"]["labels"].items()
    assert "kueue.x-k8s.io/queue-name" not in trainjob_manifest(gpu_spec())["metadata"]["labels"]


def test_the_digest_follows_the_content():
    def digest(**kw):
        return trainjob_manifest(gpu_spec(**kw))["metadata"]["annotations"]["mindzoo.io/launch-spec-sha256"]

    assert digest() == digest() and len(digest()) == 64
    assert digest() != digest(nodes=3) and digest() != digest(runtime="mindzoo-torch")


def test_whole_secrets_and_a_missing_runtime_or_kind_are_refused():
    with pytest.raises(ConfigError) as err:
        trainjob_manifest(gpu_spec(secret_env=("s3",)))
    assert err.value.key == "launch.secret_env"
    with pytest.raises(ConfigError) as err:
        gpu_spec(runtime="")
    assert err.value.key == "launch.runtime"
    with pytest.raises(ConfigError) as err:
        gpu_spec(kind="jobset")
    assert err.value.key == "launch.kind"


def status(code: int, message: str, **details) -> str:
    return json.dumps({"kind": "Status", "status": "Failure", "message": message, "code": code,
                       **({"details": details} if details else {})})


def test_no_trainer_crds_names_what_to_install():
    line = refused(gpu_spec(), 404, status(404, "the server could not find the requested resource"))
    assert line.startswith("cannot create trainjob ml/mz-run-1-abcdef12: ")
    assert "Kubeflow Trainer v2.3.0's CRDs and controller" in line and "ref=v2.3.0" in line
    assert "--launch-kind job" in line and "\n" not in line
    # A missing namespace is the API server's own answer, not a missing API.
    assert refused(gpu_spec(), 404, status(404, 'namespaces "ml" not found', name="ml", kind="namespaces")) is None


# Trainer's webhook returns a plain error (errors.ToAggregate()), which controller-runtime denies with 403; the
# API server prefixes the webhook's name (manifests/base/webhook/manifests.yaml).
WEBHOOK_RUNTIME_MISSING = (
    'admission webhook "validator.trainjob.trainer.kubeflow.org" denied the request: spec.RuntimeRef: Invalid '
    'value: {"name":"mindzoo-mindspore","apiGroup":"trainer.kubeflow.org","kind":"ClusterTrainingRuntime"}: '
    'clustertrainingruntimes.trainer.kubeflow.org "mindzoo-mindspore" not found: '
    'specified clusterTrainingRuntime must be created before the TrainJob is created')


def test_a_missing_runtime_says_how_to_install_the_charts():
    line = refused(gpu_spec(), 403, status(403, WEBHOOK_RUNTIME_MISSING))
    assert "'mindzoo-mindspore' does not exist" in line
    assert "--set trainer.runtimes.enabled=true" in line and "--launch-runtime" in line


def test_another_webhook_denial_is_passed_on_in_its_own_words():
    denial = ('admission webhook "validator.trainjob.trainer.kubeflow.org" denied the request: spec.trainer.env: '
              'Invalid value: ...: must not have reserved envs, invalid envs configured: [PET_NNODES]')
    assert refused(gpu_spec(), 403, status(403, denial)) == f"cannot create trainjob ml/mz-run-1-abcdef12: {denial}"
    assert refused(gpu_spec(), 403, status(403, "forbidden: cannot create trainjobs")) is None
    assert refused(gpu_spec(), 500, "not json") is None


def test_node_env_reads_trainers_torch_variables_when_the_launchers_are_absent():
    pet = {"PET_NODE_RANK": "1", "PET_NNODES": "2", "PET_MASTER_ADDR": "mz-x-node-0-0.mz-x", "PET_MASTER_PORT": "29400",
           "PET_NPROC_PER_NODE": "auto", ENV_NUM_NODES: "2", ENV_MASTER_ADDR: "mz-x-node-0-0.mz-x.ml.svc"}
    assert NodeEnv.from_env(pet) == NodeEnv(1, 2, "mz-x-node-0-0.mz-x", 29400)
    ours = {ENV_NODE_RANK: "0", ENV_NUM_NODES: "2", ENV_MASTER_ADDR: "a.svc", ENV_MASTER_PORT: "8118",
            "PET_NODE_RANK": "1"}
    assert NodeEnv.from_env(ours) == NodeEnv(0, 2, "a.svc", 8118)  # the launcher's own come first


def test_node_env_names_the_missing_variable():
    from mindzoo.errors import MindzooError

    with pytest.raises(MindzooError, match="PET_MASTER_PORT"):
        NodeEnv.from_env({"PET_NODE_RANK": "0", "PET_NNODES": "1", "PET_MASTER_ADDR": "x"})
    with pytest.raises(MindzooError, match="MINDZOO_NODE_RANK"):
        NodeEnv.from_env({})


@pytest.mark.parametrize("text, expected", [(None, ()), ("", ()), ("1", ("1",)), ("0,2", ("0", "2")),
                                            ("1,3-5", ("1", "3", "4", "5"))])
def test_a_jobs_failed_indexes_are_read_as_the_indexes_they_name(text, expected):
    from mindzoo.launcher.kinds import indexes

    assert indexes(text) == expected
