"""`mindzoo launch train` — what the pipeline's distributed train task runs — against the real API server,
as the chart's pipeline ServiceAccount (a real token), with the real MinIO for rank 0's result.

kwok plays the worker pods: it runs no containers, so the test stands in for rank 0's container by publishing
its result once the Job exists (tests/launcher/test_node.py runs that side for real); and it serves, through
the API server's pods/log, the log a test gives the workers (Cluster.pod_logs), which is how a failed step
shows the failed worker's last lines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kubeharness import FAIL_LABEL, HOLD_LABEL
from mindzoo.kfp_io import follow_pointer
from launcher_objects import FAILING_LOG

pytestmark = [pytest.mark.control, pytest.mark.cluster, pytest.mark.stack]

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv-control" / "bin" / "mindzoo"
RESULT = {"artifacts": {"checkpoint": {"uri": "s3://B/runs/R/model", "metadata": {"model": "googlenet"}},
                        "metrics": {"uri": "", "metadata": {"top1": 0.93}}}}


@pytest.fixture
def as_pipeline_sa(cluster, mindzoo_release, tmp_path):
    """A kubeconfig holding a real token of the chart's pipeline ServiceAccount, and its namespace and pools."""
    ns, sa = mindzoo_release["namespace"], mindzoo_release["service_account"]
    kubeconfig = cluster.service_account_kubeconfig(ns, sa, tmp_path / "kubeconfig")
    pools = mindzoo_release["defaults"]["MINDZOO_NODE_POOLS"]
    return kubeconfig, ns, pools


def launch(cluster, stack, kubeconfig, ns, pools, bucket, run_id, *extra, stand_in=True, attempt=""):
    """Run the CLI; meanwhile publish rank 0's result once the Job exists (kwok runs no container)."""
    proc, out = start(cluster, stack, kubeconfig, ns, pools, bucket, run_id, *extra, stand_in=stand_in,
                      attempt=attempt)
    _, stderr = proc.communicate(timeout=300)
    return proc.returncode, stderr, json.loads(out.read_text()) if out.is_file() else None


def start(cluster, stack, kubeconfig, ns, pools, bucket, run_id, *extra, stand_in=True, attempt=""):
    """The CLI's process (running) and where its executor output goes."""
    tmp = kubeconfig.parent / f"{run_id}{attempt}"
    tmp.mkdir()
    out = tmp / "executor_output.json"
    executor_input = {"outputs": {"outputFile": str(out), "artifacts": {
        "checkpoint": {"artifacts": [{"name": "checkpoint", "uri": str(tmp / "checkpoint")}]},
        "metrics": {"artifacts": [{"name": "metrics", "uri": str(tmp / "metrics")}]}}}}
    pool = pools["ascend910"]
    launch_pools = {"ascend": {"image": "registry.example/mindzoo-ascend:0.1.0", "resource": pool["resource"],
                               "node_selector": pool["nodeSelector"], "tolerations": [pool["tolerations"][0]["key"]]}}
    argv = [str(BIN), "launch", "train", "--dataset", f"s3://{bucket}/datasets/d", "--output", f"s3://{bucket}/runs",
            "--run-id", run_id, "--device", "ascend", "--workers", "8", "--launch-nodes", "2",
            "--launch-namespace", ns, "--launch-pools", json.dumps(launch_pools), "--launch-s3-secret", "mindzoo-minio",
            "--launch-cpu", "100m", "--launch-memory", "256Mi", "--executor-input", json.dumps(executor_input), *extra]
    env = {"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin", "MINDZOO_STATE_DIR": str(stack.state_dir),
           "MINDZOO_PIPELINE_RUN_ID": "pipeline-1",
           # The checkout's code, not the editable install's, when the test run points there.
           **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if stand_in:
        threading.Thread(target=_stand_in_for_rank0, args=(cluster.batch(), stack, bucket, run_id, ns),
                         daemon=True).start()
    return proc, out


def _stand_in_for_rank0(batch, stack, bucket, run_id, ns):
    import io

    from minio import Minio

    from mindzoo.launcher.train import job_name

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(j.metadata.name == job_name(run_id) for j in batch.list_namespaced_job(ns).items):
            client = Minio(stack.s3_endpoint, stack.access_key, stack.secret_key, secure=False)
            # What the workers publish: each rank's weight digest (2 nodes x 8 workers), rank 0's result.
            for rank in range(16):
                body = json.dumps({"rank": rank, "weights_sha256": "ab" * 32, "steps": 3}).encode()
                client.put_object(bucket, f"runs/{run_id}/launch/ranks/rank{rank}.json", io.BytesIO(body), len(body))
            body = json.dumps(RESULT).encode()
            client.put_object(bucket, f"runs/{run_id}/launch/result.json", io.BytesIO(body), len(body))
            return
        time.sleep(0.1)


def gone(cluster, ns, name):
    jobs = [j.metadata.name for j in cluster.batch().list_namespaced_job(ns).items]
    services = [s.metadata.name for s in cluster.core().list_namespaced_service(ns).items]
    return name not in jobs and name not in services


def test_launch_creates_the_indexed_job_on_the_pool_and_hands_rank0s_outputs_to_kfp(cluster, stack, bucket,
                                                                                      as_pipeline_sa):
    from mindzoo.launcher.train import job_name

    kubeconfig, ns, pools = as_pipeline_sa
    name = job_name("shape-1")
    proc, out = start(cluster, stack, kubeconfig, ns, pools, bucket, "shape-1", "--launch-keep",
                      "--launch-labels", f"{HOLD_LABEL}=true")
    try:
        nodes = cluster.placement(ns, f"mindzoo.io/launch={name}", 2)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert nodes == ["ascend910-0", "ascend910-1"]  # one rank per node: each takes all 8 of a node's NPUs
    executor_output = json.loads(out.read_text())
    checkpoint = executor_output["artifacts"]["checkpoint"]["artifacts"][0]
    assert checkpoint["metadata"]["location"] == "s3://B/runs/R/model"  # rank 0's result, a pointer for KFP
    assert follow_pointer(checkpoint["uri"]) == "s3://B/runs/R/model"
    job = cluster.batch().read_namespaced_job(name, ns)
    assert (job.spec.completion_mode, job.spec.completions, job.spec.backoff_limit) == ("Indexed", 2, 3)
    assert [r.action for r in job.spec.pod_failure_policy.rules] == ["Count", "FailJob"]
    assert job.spec.template.spec.automount_service_account_token is False
    pod = job.spec.template.spec
    container = pod.containers[0]
    assert container.image == "registry.example/mindzoo-ascend:0.1.0"
    assert container.command[:6] == ["mindzoo", "launch", "node", "--workers", "8", "--result"]
    assert container.command[6] == f"s3://{bucket}/runs/shape-1/launch/result.json"
    assert container.command[7:9] == ["--", "train"] and "--run-id" in container.command
    assert container.resources.limits["huawei.com/Ascend910"] == "8"
    assert pod.node_selector == {"accelerator": "huawei-Ascend910"} and pod.subdomain == name
    tolerations = [(t.key, t.operator, t.effect) for t in pod.tolerations]
    assert tolerations == [("huawei.com/Ascend910", "Exists", "NoSchedule")]
    env = {e.name: e for e in container.env}
    assert env["AWS_SECRET_ACCESS_KEY"].value is None  # keys come from the Secret, never as values
    assert env["AWS_SECRET_ACCESS_KEY"].value_from.secret_key_ref.name == "mindzoo-minio"
    assert env["MINDZOO_PIPELINE_RUN_ID"].value == "pipeline-1"
    assert cluster.core().read_namespaced_service(name, ns).spec.cluster_ip == "None"
    cluster.batch().delete_namespaced_job(name, ns, propagation_policy="Foreground")
    assert cluster.wait_for("kept launch deleted", lambda: gone(cluster, ns, name), 60)


def test_a_failing_worker_fails_the_step_with_one_error_line_and_cleans_up(cluster, stack, bucket, as_pipeline_sa):
    from mindzoo.launcher.train import job_name

    kubeconfig, ns, pools = as_pipeline_sa
    with cluster.pod_logs(ns, FAILING_LOG, container="train"):
        code, err, executor_output = launch(cluster, stack, kubeconfig, ns, pools, bucket, "fail-1",
                                            "--launch-labels", f"{FAIL_LABEL}=true", stand_in=False)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and executor_output is None and "Traceback" not in err
    # One line: the failed worker (the lowest index) and the last 5 lines of its log, read as the SA.
    assert lines[-1].startswith(f"error: worker 0 ({job_name('fail-1')}-0-"), lines[-1]
    assert lines[-1].endswith(" failed: " + " | ".join(FAILING_LOG[-5:])), lines[-1]
    assert "log unavailable" not in err and FAILING_LOG[1] not in lines[-1]
    assert cluster.wait_for("failed launch cleaned up", lambda: gone(cluster, ns, job_name("fail-1")), 60)


def test_a_launch_past_its_timeout_is_stopped_and_cleaned_up(cluster, stack, bucket, as_pipeline_sa):
    from mindzoo.launcher.train import job_name

    kubeconfig, ns, pools = as_pipeline_sa
    # 64 chips per pod fit no node: the pods stay Pending until the deadline.
    code, err, _ = launch(cluster, stack, kubeconfig, ns, pools, bucket, "slow-1", "--workers", "64",
                             "--launch-timeout", "5", stand_in=False)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and lines[-1].startswith("error: ") and "Traceback" not in err
    assert "timed out" in lines[-1] or "DeadlineExceeded" in lines[-1] or "deadline" in lines[-1].lower()
    assert cluster.wait_for("timed-out launch cleaned up", lambda: gone(cluster, ns, job_name("slow-1")), 60)


def test_a_launch_the_api_refuses_is_one_error_line_naming_the_namespace(cluster, stack, bucket, as_pipeline_sa):
    kubeconfig, _, pools = as_pipeline_sa
    # The pipeline ServiceAccount's Role covers its own namespace only.
    code, err, executor_output = launch(cluster, stack, kubeconfig, "default", pools, bucket, "refused-1",
                                        stand_in=False)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and executor_output is None and "Traceback" not in err, err[-2000:]
    assert lines[-1].startswith("error: the Kubernetes API refused the launch in namespace default: "), lines[-1]
    assert "forbidden" in lines[-1] and "system:serviceaccount:mindzoo:mindzoo-pipeline" in lines[-1]


def test_a_trainjob_launch_without_trainer_is_one_error_line_and_creates_nothing(cluster, stack, bucket,
                                                                                as_pipeline_sa):
    """This cluster has no Kubeflow Trainer (its CRDs are only applied inside test_launcher_trainjob.py's
    tests): the line says what to install, and neither a TrainJob nor a Job is left."""
    from mindzoo.launcher.train import job_name

    kubeconfig, ns, pools = as_pipeline_sa
    code, err, executor_output = launch(cluster, stack, kubeconfig, ns, pools, bucket, "no-trainer-1",
                                        "--launch-kind", "trainjob", stand_in=False)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and executor_output is None and "Traceback" not in err, err[-2000:]
    assert lines[-1].startswith(f"error: cannot create trainjob {ns}/{job_name('no-trainer-1')}: "), lines[-1]
    assert "Kubeflow Trainer v2.3.0's CRDs and controller" in lines[-1]
    assert job_name("no-trainer-1") not in {j.metadata.name for j in cluster.batch().list_namespaced_job(ns).items}


def running_workers(cluster, ns, name):
    pods = cluster.core().list_namespaced_pod(ns, label_selector=f"mindzoo.io/launch={name}").items
    return len([p for p in pods if p.status.phase == "Running"]) == 2


def test_sigterm_deletes_the_job_and_fails_the_step_with_one_error_line(cluster, stack, bucket, as_pipeline_sa):
    """What happens when KFP cancels the run or the task pod is deleted: the kubelet sends SIGTERM."""
    from mindzoo.launcher.train import job_name

    kubeconfig, ns, pools = as_pipeline_sa
    name = job_name("sigterm-1")
    proc, out = start(cluster, stack, kubeconfig, ns, pools, bucket, "sigterm-1", "--launch-labels",
                      f"{HOLD_LABEL}=true", stand_in=False)
    try:
        cluster.wait_for("both workers running", lambda: running_workers(cluster, ns, name), 60)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode != 0 and "Traceback" not in err and not out.is_file(), err[-2000:]
    assert lines[-1] == f"error: terminated by SIGTERM: job {ns}/{name} deleted", lines[-1]
    assert cluster.wait_for("the terminated launch cleaned up", lambda: gone(cluster, ns, name), 60)


def test_a_killed_launchers_job_is_adopted_by_the_next_attempt(cluster, stack, bucket, as_pipeline_sa):
    """A launcher killed outright (SIGKILL, its node lost) leaves its Job running; KFP's retry of the task
    launches the same run id again: it adopts that Job (no 409, no second Job) and finishes the step."""
    from mindzoo.launcher.train import job_name

    kubeconfig, ns, pools = as_pipeline_sa
    name, hold = job_name("adopt-1"), ("--launch-labels", f"{HOLD_LABEL}=true")
    first, _ = start(cluster, stack, kubeconfig, ns, pools, bucket, "adopt-1", *hold, stand_in=False)
    try:
        cluster.wait_for("both workers running", lambda: running_workers(cluster, ns, name), 60)
    finally:
        first.kill()
        first.communicate(timeout=30)
    uid = cluster.batch().read_namespaced_job(name, ns).metadata.uid  # still there, still running
    second, out = start(cluster, stack, kubeconfig, ns, pools, bucket, "adopt-1", *hold, attempt="-retry")
    try:
        cluster.wait_for("the second launcher to see the Job", lambda: second.poll() is not None or (
            cluster.batch().read_namespaced_job(name, ns).metadata.uid == uid and _release(cluster, ns, name)), 60)
        _, err = second.communicate(timeout=120)
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0, err[-3000:]
    assert f"adopted job {ns}/{name}: 2 node(s)" in err and "launched job" not in err
    executor_output = json.loads(out.read_text())
    assert executor_output["artifacts"]["checkpoint"]["artifacts"][0]["metadata"]["location"] == "s3://B/runs/R/model"
    assert cluster.wait_for("the adopted launch cleaned up", lambda: gone(cluster, ns, name), 60)


def _release(cluster, ns, name) -> bool:
    """Let kwok complete the held workers; true once none is held."""
    pods = cluster.core().list_namespaced_pod(ns, label_selector=f"mindzoo.io/launch={name}").items
    for pod in pods:
        if (pod.metadata.labels or {}).get(HOLD_LABEL):
            cluster.core().patch_namespaced_pod(pod.metadata.name, ns, {"metadata": {"labels": {HOLD_LABEL: None}}})
    return bool(pods)


def test_a_job_of_another_spec_under_the_run_id_is_refused_in_one_line_and_left_alone(cluster, stack, bucket,
                                                                                       as_pipeline_sa):
    from minio import Minio

    from mindzoo.launcher.train import job_name

    kubeconfig, ns, pools = as_pipeline_sa
    name = job_name("conflict-1")
    code, err, _ = launch(cluster, stack, kubeconfig, ns, pools, bucket, "conflict-1", "--launch-keep")
    assert code == 0, err[-3000:]
    uid = cluster.batch().read_namespaced_job(name, ns).metadata.uid
    code, err, executor_output = launch(cluster, stack, kubeconfig, ns, pools, bucket, "conflict-1",
                                        "--launch-memory", "512Mi", stand_in=False, attempt="-other")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and executor_output is None and "Traceback" not in err, err[-2000:]
    assert lines[-1] == (f"error: job {ns}/{name} exists and is not this launch's (another spec): delete it, "
                         "or launch under another run id"), lines[-1]
    # Nothing of the first launch was touched: its Job, and the results it published.
    assert cluster.batch().read_namespaced_job(name, ns).metadata.uid == uid
    client = Minio(stack.s3_endpoint, stack.access_key, stack.secret_key, secure=False)
    assert client.stat_object(bucket, "runs/conflict-1/launch/result.json").size > 0
    cluster.batch().delete_namespaced_job(name, ns, propagation_policy="Foreground")
    assert cluster.wait_for("the kept launch deleted", lambda: gone(cluster, ns, name), 60)
