"""`mindzoo launch train` on the real node: the Indexed Job's two worker pods start from the CPU image,
find pod 0 through the headless Service and CoreDNS, train the digits as one data-parallel job (MindSpore's
dynamic cluster, or torchrun's variables with gloo), and publish to the chart's in-cluster MinIO. The test
reads every rank's weight digest from MinIO itself and compares them.

The launcher runs either here, as the chart's pipeline ServiceAccount (a real token), or - the MindSpore
case - as the compiled `train_distributed` component itself: its container (image, command, arguments
with KFP's placeholders resolved by kfp's own resolver) runs as a task pod under that ServiceAccount,
with the pipeline-defaults ConfigMap and the object store Secret as env, as KFP would run it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mindzoo.datasets import DIGITS_TRAINING

pytestmark = [pytest.mark.control, pytest.mark.cluster, pytest.mark.realnode, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CONTROL = ROOT / ".venv-control" / "bin" / "mindzoo"
RUNTIME = ROOT / ".venv" / "bin" / "mindzoo"
BUCKET = "mindzoo"


def _minio(real_release):
    from minio import Minio

    m = real_release["minio"]
    return Minio(m["endpoint"], m["access_key"], m["secret_key"], secure=False)


def _store_env(real_release) -> dict[str, str]:
    m = real_release["minio"]
    return {**os.environ, "MINDZOO_S3_ENDPOINT": m["endpoint"], "AWS_ACCESS_KEY_ID": m["access_key"],
            "AWS_SECRET_ACCESS_KEY": m["secret_key"], "MINDZOO_STATE_DIR": "/nonexistent-no-local-stack"}


def tasks_secret(real_release) -> str:
    """The chart's scoped MinIO user for tasks and workers (not the root keys): what every pod below runs as."""
    return real_release["defaults"]["MINDZOO_S3_SECRET"]


@pytest.fixture(scope="module")
def digits(real_release, tmp_path_factory) -> str:
    """The bundled digits, converted by the real preprocess step into the in-cluster MinIO; its s3:// prefix."""
    folder = tmp_path_factory.mktemp("digits")
    env = _store_env(real_release)
    for argv in (["datasets", "make-digits", "--format", "cifar10", str(folder / "src")],
                 ["preprocess", "--source", str(folder / "src"), "--output", f"s3://{BUCKET}/datasets",
                  "--no-tracking-enabled"]):
        proc = subprocess.run([str(RUNTIME), *argv], env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
    from mindzoo.storage import MANIFEST

    keys = [o.object_name for o in _minio(real_release).list_objects(BUCKET, "datasets/", recursive=True)]
    return f"s3://{BUCKET}/" + next(k.rsplit("/", 1)[0] for k in keys if k.endswith(MANIFEST))


@pytest.fixture(scope="module")
def as_pipeline_sa(real_cluster, real_release, tmp_path_factory) -> Path:
    """A kubeconfig holding a real token of the chart's pipeline ServiceAccount."""
    ns, sa = real_release["namespace"], real_release["service_account"]
    return real_cluster.service_account_kubeconfig(ns, sa, tmp_path_factory.mktemp("sa") / "kubeconfig", seconds=7200)


def launch(real_release, kubeconfig: Path, dataset: str, run_id: str, *extra: str,
           steps: int = 4) -> subprocess.Popen:
    from components.images import CPU

    pools = {"cpu": {"image": CPU}}
    argv = [str(CONTROL), "launch", "train", "--dataset", dataset, "--output", f"s3://{BUCKET}/runs",
            "--run-id", run_id, *DIGITS_TRAINING.argv(epochs=False), "--set", "epochs=1",
            "--steps-per-epoch", str(steps), "--no-final-eval", "--no-tracking-enabled", "--device", "cpu",
            "--launch-nodes", "2", "--launch-pools", json.dumps(pools),
            "--launch-s3-secret", tasks_secret(real_release),
            "--launch-cpu", "100m", "--launch-memory", "3Gi", "--launch-timeout", "900", *extra]
    env = {**_store_env(real_release), "KUBECONFIG": str(kubeconfig)}
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rank_digests(real_release, run_id: str) -> list[dict]:
    client = _minio(real_release)
    prefix = f"runs/{run_id}/launch/ranks/"
    return [json.loads(client.get_object(BUCKET, o.object_name).read())
            for o in sorted(client.list_objects(BUCKET, prefix), key=lambda o: o.object_name)]


def left_behind(real_cluster, ns: str, run_id: str) -> list[str]:
    from mindzoo.launcher.train import job_name

    name = job_name(run_id)
    jobs = [j.metadata.name for j in real_cluster.batch().list_namespaced_job(ns).items if j.metadata.name == name]
    services = [s.metadata.name for s in real_cluster.core().list_namespaced_service(ns).items
                if s.metadata.name == name]
    pods = [p.metadata.name for p in real_cluster.core().list_namespaced_pod(
        ns, label_selector=f"mindzoo.io/launch={name}").items]
    return jobs + services + pods


def test_two_pods_train_as_one_job_with_identical_weights(real_cluster, real_release, as_pipeline_sa, digits):
    engine = "torch"
    run_id = f"two-pods-{engine}"
    proc = launch(real_release, as_pipeline_sa, digits, run_id, "--engine", engine)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-4000:] + real_cluster.diagnostics()
    check_two_ranks(real_cluster, real_release, run_id)
    assert "2 ranks finished with identical weights" in err


def test_the_train_distributed_component_runs_as_a_task_pod_and_trains_on_two_pods(real_cluster, real_release,
                                                                                     digits, tmp_path):
    from components.images import CPU
    from components.train.component import train_distributed
    from kfp import compiler
    from kfp.local.placeholder_utils import replace_placeholders

    import yaml

    run_id = "component-mindspore"
    ns, core = real_release["namespace"], real_cluster.core()
    compiler.Compiler().compile(train_distributed, str(tmp_path / "component.yaml"))
    container = yaml.safe_load((tmp_path / "component.yaml").read_text())["deploymentSpec"]["executors"][
        "exec-train-distributed"]["container"]
    assert container["image"] == CPU
    training = DIGITS_TRAINING
    parameters = {"nodes": 2, "launch_pools": json.dumps({"cpu": {"image": CPU}}),
                  "s3_secret": tasks_secret(real_release),
                  "launch_timeout": 900, "launch_cpu": "100m", "launch_memory": "3Gi", "recipe": training.recipe,
                  "input_size": training.input_size, "set": ",".join(("epochs=1", *training.overrides(epochs=False))),
                  "output": f"s3://{BUCKET}/runs", "run_id": run_id, "steps_per_epoch": 4, "device": "cpu",
                  "engine": "mindspore"}
    executor_input = {
        "inputs": {"parameterValues": parameters, "artifacts": {"dataset": {"artifacts": [
            {"name": "dataset", "uri": digits, "type": {"schemaTitle": "system.Dataset"}, "metadata": {}}]}}},
        "outputs": {"outputFile": "/kfp/outputs/executor_output.json", "artifacts": {
            name: {"artifacts": [{"name": name, "uri": f"/kfp/outputs/{name}", "type": {"schemaTitle": kind},
                                  "metadata": {}}]}
            for name, kind in (("checkpoint", "system.Model"), ("metrics", "system.Metrics"))}}}
    argv = replace_placeholders([*container["command"], *container["args"]], executor_input, "pipeline", "train",
                                "/kfp/root", "run-1")
    secret = {"name": tasks_secret(real_release)}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "task-train-distributed", "labels": {"pipelines.kubeflow.org/v2_component": "true"}},
        "spec": {
            "restartPolicy": "Never", "serviceAccountName": real_release["service_account"],
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main", "image": container["image"], "command": argv,
                "envFrom": [{"configMapRef": {"name": "mindzoo-pipeline-defaults"}}],
                "env": [{"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {**secret, "key": "accesskey"}}},
                        {"name": "AWS_SECRET_ACCESS_KEY",
                         "valueFrom": {"secretKeyRef": {**secret, "key": "secretkey"}}},
                        {"name": "HOME", "value": "/kfp"}],
                "volumeMounts": [{"name": "kfp", "mountPath": "/kfp"}],
                "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
            "volumes": [{"name": "kfp", "emptyDir": {}}]}}
    core.create_namespaced_pod(ns, pod)
    try:
        done = real_cluster.wait_for("the task pod to finish", lambda: (
            core.read_namespaced_pod("task-train-distributed", ns).status.phase in ("Succeeded", "Failed")), 900, 3)
        log = core.read_namespaced_pod_log("task-train-distributed", ns)
        phase = core.read_namespaced_pod("task-train-distributed", ns).status.phase
        assert done and phase == "Succeeded", log[-4000:] + real_cluster.diagnostics()
    finally:
        core.delete_namespaced_pod("task-train-distributed", ns, grace_period_seconds=0)
    assert "launched job" in log and "2 ranks finished with identical weights" in log, log[-3000:]
    check_two_ranks(real_cluster, real_release, run_id)


def check_two_ranks(real_cluster, real_release, run_id: str) -> None:
    """Both ranks' weight digests in MinIO, equal; rank 0's model published; the launch's objects gone."""
    ranks = rank_digests(real_release, run_id)
    assert [r["rank"] for r in ranks] == [0, 1], ranks
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"] and len(ranks[0]["weights_sha256"]) == 64
    assert ranks[0]["steps"] == ranks[1]["steps"] == 4
    model = [o.object_name for o in _minio(real_release).list_objects(BUCKET, f"runs/{run_id}/model/")]
    assert model, f"rank 0 published no model under runs/{run_id}/model/"
    ns = real_release["namespace"]
    assert real_cluster.wait_for("the launch's objects to go", lambda: not left_behind(real_cluster, ns, run_id), 120)


def test_killing_a_worker_pod_fails_the_launch_naming_its_rank(real_cluster, real_release, as_pipeline_sa, digits):
    from mindzoo.launcher.train import job_name

    run_id = "killed-worker"
    ns, name = real_release["namespace"], job_name(run_id)
    proc = launch(real_release, as_pipeline_sa, digits, run_id, steps=100000)
    kill_worker_1(real_cluster, ns, f"mindzoo.io/launch={name}", proc)
    assert real_cluster.wait_for("the failed launch's objects to go", lambda: not left_behind(real_cluster, ns, run_id),
                                 120)


def kill_worker_1(real_cluster, ns: str, selector: str, proc: subprocess.Popen) -> None:
    """Once both worker pods (``selector``) run and rank 0 is past its first step, delete worker 1's pod: the
    launch ``proc`` must fail with one error line naming worker 1, and no traceback."""
    core = real_cluster.core()

    def index(pod) -> str:
        return (pod.metadata.labels or {}).get("batch.kubernetes.io/job-completion-index", "")

    def training() -> bool:  # both pods running and rank 0 past its first step
        pods = core.list_namespaced_pod(ns, label_selector=selector).items
        if len(pods) != 2 or any(p.status.phase != "Running" for p in pods):
            return False
        pod0 = next(p for p in pods if index(p) == "0")
        return "step" in core.read_namespaced_pod_log(pod0.metadata.name, ns, tail_lines=20)

    try:
        real_cluster.wait_for("both workers training", training, 600, 2)
        victim = next(p for p in core.list_namespaced_pod(ns, label_selector=selector).items if index(p) == "1")
        core.delete_namespaced_pod(victim.metadata.name, ns, grace_period_seconds=0)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode != 0 and "Traceback" not in err, err[-3000:]
    assert lines[-1].startswith("error: ") and "worker 1" in lines[-1], lines[-1]
