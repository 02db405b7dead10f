"""mindzoo's compiled pipelines run by the real Kubeflow Pipelines 2.17 backend on the real node (issue #21;
marker kfpbackend, ``make test-e2e``): submitted with ``mindzoo pipeline submit`` and with upstream's
``kfp run create``, turned by the real API server into Argo workflows whose driver, launcher and
executor pods run on the node, with the chart installed in KFP's namespace so its Secret and
pipeline-defaults ConfigMap reach the tasks through kfp-kubernetes.

The runs train the bundled digits (written as CIFAR-10 binaries into the chart's MinIO) with the
digits settings every other pipeline test uses. Tests share runs where they check different things
of the same run; the module's order is the order they run in.
"""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest

import kfpruns
from kfpbackend import NAMESPACE, runs_step, kfp_cli
from kfpruns import ROOT, mlflow_runs, run_id_of, submit, tags
from mindzoo.datasets import DIGITS_TRAINING
from mindzoo.infer.report import parse_acc

pytestmark = [pytest.mark.control, pytest.mark.cluster, pytest.mark.realnode, pytest.mark.kfpbackend,
              pytest.mark.slow]

RUNTIME_BIN = ROOT / ".venv" / "bin" / "mindzoo"
STEPS = ("preprocess", "train", "evaluate", "export", "infer")
VAL_IMAGES = 359  # the digits' val split, every image scored


def upload_digits(release, folder, prefix: str) -> str:
    client, bucket = kfpruns.minio(release), release["defaults"]["MINDZOO_DATA_BUCKET"]
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        client.fput_object(bucket, f"{prefix}/{path.relative_to(folder)}", str(path))
    return f"s3://{bucket}/{prefix}"


@pytest.fixture(scope="module")
def digits(kfp_backend, tmp_path_factory):
    """The bundled digits as raw CIFAR-10 binaries in a local folder and in the chart's data bucket."""
    folder = tmp_path_factory.mktemp("digits")
    proc = subprocess.run([str(RUNTIME_BIN), "datasets", "make-digits", "--format", "cifar10", str(folder)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return folder, upload_digits(kfp_backend[1], folder, f"raw/digits-{uuid.uuid4().hex[:6]}")


def train_params(source: str, **extra: object) -> list[str]:
    """``key=value`` parameters of train_pipeline for the digits on one CPU pod."""
    params = {"source": source, "recipe": DIGITS_TRAINING.recipe, "input_size": DIGITS_TRAINING.input_size,
              "overrides": ",".join(DIGITS_TRAINING.overrides()), "min_top1": 0.8, **extra}
    return [f"{key}={value}" for key, value in params.items()]


def succeeded(backend, proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, proc.stderr[-3000:] + "\n" + backend.failed_logs()
    assert "succeeded" in proc.stderr
    return run_id_of(proc)


@pytest.fixture(scope="module")
def first_run(kfp_backend, digits) -> str:
    """train_pipeline submitted by `mindzoo pipeline submit --wait --cache` (nothing to reuse yet)."""
    backend, _ = kfp_backend
    return succeeded(backend, submit(backend, train_params(digits[1]), "--wait", "--cache"))


def test_mindzoo_pipeline_submit_runs_train_pipeline_to_success(kfp_backend, first_run):
    backend, _ = kfp_backend
    assert kfpruns.client(backend).get_run(first_run).state == "SUCCEEDED"
    states = kfpruns.task_states(backend, first_run)
    assert states == dict.fromkeys(("preprocess", "train", "evaluate", "export", "infer310"), "SUCCEEDED"), states


def test_every_step_logged_to_mlflow_tagged_with_the_kfp_run(real_cluster, kfp_backend, first_run):
    backend, release = kfp_backend
    runs = mlflow_runs(real_cluster, release, first_run)
    by_step = {tags(r).get("mindzoo.step"): r for r in runs if tags(r).get("mindzoo.step")}
    assert sorted(by_step) == sorted(STEPS)
    assert all(r["info"]["status"] == "FINISHED" for r in by_step.values())
    infer = {m["key"].rsplit("/", 1)[-1]: m["value"] for m in by_step["infer"]["data"].get("metrics", [])}
    assert infer["top1"] >= 0.90


def test_the_mindir_and_the_acc_log_are_in_minio(kfp_backend, first_run):
    backend, release = kfp_backend
    bucket = release["defaults"]["MINDZOO_DATA_BUCKET"]
    exported = kfpruns.keys(release, bucket, f"runs/{first_run}-train/export/")
    assert any(k.endswith(".mindir") for k in exported), exported
    store = backend._named("ConfigMap", "pipeline-install-config")["data"]["bucketName"]
    logs = [k for k in kfpruns.keys(release, store, "v2/artifacts/") if first_run in k and k.endswith("/acc.log")]
    assert len(logs) == 1, logs
    acc = parse_acc(kfpruns.read(release, store, logs[0]))
    assert acc["images"] == VAL_IMAGES and acc["top1"] >= 0.90


def test_ml_metadata_holds_the_metrics_the_kfp_ui_shows(kfp_backend, first_run):
    backend, _ = kfp_backend
    artifacts = kfpruns.mlmd_artifacts(backend, first_run)
    types = {t for t, _, _ in artifacts}
    assert {"system.Dataset", "system.Model", "system.Metrics", "system.ClassificationMetrics",
            "system.HTML"} <= types, artifacts
    metrics = [uri for t, name, uri in artifacts if t == "system.Metrics" and name == "metrics"]
    assert any(kfpruns.mlmd_metrics(backend, uri).get("top1", 0) >= 0.90 for uri in metrics), artifacts


def test_a_second_identical_run_reuses_preprocess_from_kfps_cache_a_changed_source_does_not(
        kfp_backend, digits, first_run):
    backend, release = kfp_backend
    again = succeeded(backend, submit(backend, train_params(digits[1]), "--wait", "--cache"))
    assert kfpruns.mlmd_task_states(backend, again)["preprocess"] == "CACHED"
    assert not backend.task_logs(again, "preprocess")  # no pod ran it
    moved = upload_digits(release, digits[0], f"raw/digits-moved-{uuid.uuid4().hex[:6]}")
    changed = succeeded(backend, submit(backend, train_params(moved), "--wait", "--cache"))
    assert kfpruns.mlmd_task_states(backend, changed)["preprocess"] == "COMPLETE"
    assert len(backend.task_logs(changed, "preprocess")) == 1


def test_upstream_kfp_run_create_runs_the_compiled_pipeline(kfp_backend, digits, tmp_path):
    backend, _ = kfp_backend
    proc = subprocess.run([str(kfpruns.CONTROL_BIN), "pipeline", "compile", "--output", str(tmp_path),
                           "--pipelines", "train"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    proc = kfp_cli(backend, "run", "create", "--experiment-name", "mindzoo-e2e-cli", "--package-file",
                   str(tmp_path / "train_pipeline.yaml"), "--watch", "--timeout", "1800",
                   *train_params(digits[1], steps_per_epoch=4, min_top1=0.0), timeout=2100)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + backend.failed_logs()
    run = max(kfpruns.client(backend).list_runs(page_size=100).runs or [], key=lambda r: r.created_at)
    assert run.state == "SUCCEEDED", proc.stdout[-2000:]
    assert {tags(r).get("mindzoo.step") for r in mlflow_runs(backend.cluster, kfp_backend[1], run.run_id)} >= \
        set(STEPS)


def test_two_nodes_launch_an_indexed_job_from_the_train_task(real_cluster, kfp_backend, digits):
    """nodes=2: the train task's pod, as KFP's runner ServiceAccount bound to the chart's launcher Role,
    creates the Indexed Job whose two worker pods train as one MindSpore cluster."""
    backend, release = kfp_backend
    seen: set[str] = set()
    proc = subprocess.Popen([str(kfpruns.CONTROL_BIN), "pipeline", "submit", "--host", backend.endpoint,
                             "--experiment", "mindzoo-e2e", "--wait", "--timeout", "1800",
                             # two workers must fit this 2-core node beside the chart's and KFP's pods
                             "--worker-cpu", "100m", "--worker-memory", "3Gi",
                             *[a for p in train_params(digits[1], nodes=2, steps_per_epoch=4, min_top1=0.0)
                               for a in ("--param", p)]],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    core = real_cluster.core()
    while proc.poll() is None:
        for pod in core.list_namespaced_pod(NAMESPACE, label_selector="batch.kubernetes.io/job-completion-index"
                                            ).items:
            seen.add(pod.metadata.labels["batch.kubernetes.io/job-completion-index"])
        time.sleep(2)
    out, err = proc.communicate()
    succeeded(backend, subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    assert seen == {"0", "1"}


def test_infer_pipeline_scores_the_registered_model(real_cluster, kfp_backend, first_run):
    """By its registered version (`models:/<name>/<version>`): the run's `model` task (mindzoo locate) resolves
    it through MLflow to the export's prefix, and the infer task scores that export on the dataset."""
    backend, release = kfp_backend
    by_step = {tags(r).get("mindzoo.step"): r for r in mlflow_runs(real_cluster, release, first_run)}
    export = tags(by_step["export"])
    registered = f"models:/{export['registered_model']}/{export['registered_version']}"
    data = tags(by_step["evaluate"])["dataset_uri"]
    proc = submit(backend, [f"data={data}", f"model={registered}", "infer_device=cpu"], "--package", "infer",
                  "--wait")
    run_id = succeeded(backend, proc)
    log = "\n".join(backend.task_logs(run_id, "locate"))  # the `data` and `model` tasks
    assert f"{registered} is {export['export_uri']}" in log, log[-2000:]
    infer = [r for r in mlflow_runs(real_cluster, release, run_id) if tags(r).get("mindzoo.step") == "infer"]
    top1 = [m["value"] for m in infer[0]["data"]["metrics"] if m["key"].rsplit("/", 1)[-1] == "top1"]
    assert top1 and top1[0] >= 0.90


def test_infer_pipeline_on_a_model_nobody_registered_fails_at_its_model_task(real_cluster, kfp_backend, first_run):
    backend, release = kfp_backend
    by_step = {tags(r).get("mindzoo.step"): r for r in mlflow_runs(real_cluster, release, first_run)}
    missing = f"models:/no-such-model-{uuid.uuid4().hex[:6]}/1"
    proc = submit(backend, [f"data={tags(by_step['evaluate'])['dataset_uri']}", f"model={missing}"], "--package",
                  "infer", "--wait", timeout=900)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and "ended FAILED: failed task(s) " in lines[-1], proc.stderr
    assert "model" in lines[-1].split("failed task(s) ")[1], lines[-1]
    log = "\n".join(backend.task_logs(run_id_of_line(lines[-1]), "locate"))
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and missing in errors[0] and "not in the Model Registry" in errors[0], log[-2000:]


def test_a_failing_task_fails_the_run_naming_the_task_and_its_error(kfp_backend):
    backend, release = kfp_backend
    missing = f"s3://{release['defaults']['MINDZOO_DATA_BUCKET']}/raw/no-such-{uuid.uuid4().hex[:6]}"
    proc = submit(backend, train_params(missing), "--wait", timeout=900)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and lines[-1].startswith("error: run "), proc.stderr
    assert "ended FAILED: failed task(s) preprocess" in lines[-1]
    log = "\n".join(backend.task_logs(run_id_of_line(lines[-1]), "preprocess"))
    errors = [line for line in log.splitlines() if line.startswith("error: ")]
    assert errors and missing in errors[0], log[-2000:]


def run_id_of_line(line: str) -> str:
    return line.split()[2]


def test_a_killed_train_task_is_retried_and_resumes(real_cluster, kfp_backend, digits):
    """The train task's pod is deleted once its first checkpoint is published: Argo retries the task (the
    pipeline's retry policy; "pod deleted" is one of the workflow controller's transient errors), the new
    pod resumes from that checkpoint, and the run succeeds."""
    backend, release = kfp_backend
    run_id = run_id_of(submit(backend, train_params(digits[1])))
    core, deadline, killed = real_cluster.core(), time.monotonic() + 1200, None
    while killed is None:
        assert time.monotonic() < deadline, "no train checkpoint within 20 minutes\n" + backend.failed_logs()
        for pod in core.list_namespaced_pod(NAMESPACE, label_selector=f"pipeline/runid={run_id}").items:
            running = pod.status.phase == "Running" and any(runs_step(c, "train") for c in pod.spec.containers)
            if running and "[train] checkpoint s3://" in backend.pod_log(pod.metadata.name):
                core.delete_namespaced_pod(pod.metadata.name, NAMESPACE, grace_period_seconds=0)
                killed = pod.metadata.name
        time.sleep(1)
    run = kfpruns.client(backend).wait_for_run_completion(run_id, timeout=1800)
    assert run.state == "SUCCEEDED", backend.failed_logs()
    logs = backend.task_logs(run_id, "train")
    assert len(logs) == 1 and "resumed from" in logs[0], logs  # the killed pod is gone; its retry resumed


def test_a_kfp_endpoint_answering_an_error_is_one_line_naming_host_and_status(kfp_backend):
    backend, _ = kfp_backend
    wrong = f"{backend.endpoint}/no-such-prefix"
    proc = subprocess.run([str(kfpruns.CONTROL_BIN), "pipeline", "submit", "--host", wrong, "--param",
                           "source=s3://x/y"], capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: could not submit to Kubeflow Pipelines at {wrong}: HTTP 404")


def test_task_pods_carry_the_labels_the_charts_network_policies_admit(real_cluster, kfp_backend, first_run):
    """The chart lets pipeline task pods reach MinIO and MLflow by ``networkPolicy.taskPodLabels``: every step's
    pod KFP 2.17 ran carries them (this node does not enforce NetworkPolicies; a cluster whose plugin does
    relies on these labels)."""
    import yaml

    from kfpbackend import RUN_LABEL, runs_step

    labels = yaml.safe_load((ROOT / "charts" / "mindzoo" / "values.yaml").read_text())["networkPolicy"]["taskPodLabels"]
    selector = ",".join([f"{RUN_LABEL}={first_run}", *(f"{k}={v}" for k, v in labels.items())])
    pods = real_cluster.core().list_namespaced_pod(NAMESPACE, label_selector=selector).items
    ran = {step for step in STEPS for pod in pods if any(runs_step(c, step) for c in pod.spec.containers)}
    assert ran == set(STEPS)
