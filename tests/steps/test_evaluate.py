"""`mindzoo evaluate` end to end: the real CLI on a checkpoint trained here, the real MinIO and MLflow."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = [pytest.mark.runtime, pytest.mark.stack]



@pytest.fixture(scope="module")
def trained(stack, tmp_path_factory):
    """test_train.py's digits run (GoogLeNet, CIFAR-10 recipe, >= 0.9 top-1): trained by whichever module
    comes first; the other gets the finished run's outputs back in seconds."""
    from test_train import digits_dataset, digits_training

    dataset = digits_dataset(stack)
    outputs = digits_training(stack, dataset, tmp_path_factory.mktemp("kfp") / "train-output.json")
    return {"dataset": dataset["uri"], "checkpoint": outputs["checkpoint"]["metadata"]["location"], "hash": dataset["hash"],
            "bucket": dataset["bucket"]}


def evaluate(stack, trained, *args, out=None, check=True, extra_env=None):
    extra = ()
    if out is not None:
        artifacts = {name: {"artifacts": [{"name": name, "uri": str(out.parent / name), "metadata": {}}]}
                     for name in ("metrics", "confusion", "report")}
        extra = ("--executor-input", json.dumps({"outputs": {"outputFile": str(out), "artifacts": artifacts}}))
    return stack.cli("evaluate", "--dataset", trained["dataset"], *args, *extra, env="runtime", check=check,
                     timeout=300, extra_env=extra_env)


def one_error_line(proc) -> str:
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return errors[0]


def test_scores_every_image_and_writes_all_outputs(stack, trained, tmp_path):
    out = tmp_path / "kfp" / "output.json"
    report = tmp_path / "report"
    evaluate(stack, trained, "--checkpoint", trained["checkpoint"], "--batch-size", "50", "--report-dir",
             str(report), out=out)
    artifacts = {k: v["artifacts"][0] for k, v in json.loads(out.read_text())["artifacts"].items()}
    metrics = artifacts["metrics"]["metadata"]
    assert set(metrics) == {"top1", "top5", "loss"} and 0 <= metrics["top1"] <= metrics["top5"] <= 1
    matrix = artifacts["confusion"]["metadata"]["confusionMatrix"]
    assert len(matrix["annotationSpecs"]) == 10 and len(matrix["rows"]) == 10
    counts = np.array([r["row"] for r in matrix["rows"]])
    assert counts.sum() == 359  # 359 = 7 batches of 50 + 9: the partial batch counts
    assert np.trace(counts) / 359 == pytest.approx(metrics["top1"])
    assert "<table" in (tmp_path / "kfp" / "report").read_text()
    misclassified = json.loads((report / "misclassified.json").read_text())
    assert len(misclassified) == min(200, 359 - int(np.trace(counts)))
    assert misclassified[0]["file"].startswith("test_batch.bin:")
    assert set(json.loads((report / "per_class.json").read_text())) == {
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}
    assert (report / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    _tracked_in_mlflow(stack, trained)


def _tracked_in_mlflow(stack, trained):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(stack.mlflow_uri)
    experiment = client.get_experiment_by_name(f"mindzoo/googlenet/{trained['hash'][:12]}")
    runs = client.search_runs([experiment.experiment_id], "tags.`mindzoo.step` = 'evaluate'")
    run = runs[0]
    assert run.data.tags["mindzoo.run_id"] == "digits" and run.data.params["model"] == "googlenet"
    assert run.data.metrics["eval/images"] == 359 and "eval/class_acc/zero" in run.data.metrics
    files = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert {"evaluation/confusion_matrix.png", "evaluation/confusion_matrix.json",
            "evaluation/misclassified.json", "evaluation/report.html"} <= files


def test_leaves_no_temporary_folder_behind(stack, trained, tmp_path):
    """The report files MLflow received are removed once delivered (they were left in /tmp, one folder a run)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    evaluate(stack, trained, "--checkpoint", trained["checkpoint"], extra_env={"TMPDIR": str(tmp)})
    assert not [p.name for p in tmp.iterdir() if p.name.startswith(("mindzoo-", "mz-"))]


def test_accuracy_gate_fails_the_step(stack, trained):
    proc = evaluate(stack, trained, "--checkpoint", trained["checkpoint"], "--min-top1", "0.999", check=False)
    assert "accuracy gate failed: top-1" in one_error_line(proc) and proc.returncode == 3


def test_bare_ckpt_file_needs_and_checks_the_model(stack, trained, tmp_path):
    from mindzoo.storage import S3Uri, Storage

    store = Storage.connect()
    manifest = store.read_manifest(S3Uri.parse(trained["checkpoint"]))
    bare = tmp_path / "weights.ckpt"
    store.download_file(S3Uri(trained["bucket"], manifest.files["model.ckpt"]["key"]), bare)
    proc = evaluate(stack, trained, "--checkpoint", str(bare), check=False)
    assert "records no model: pass --model" in one_error_line(proc)
    proc = evaluate(stack, trained, "--checkpoint", str(bare), "--model", "resnet50", "--input-size", "16",
                    check=False)
    assert "does not fit this network" in one_error_line(proc)
    proc = evaluate(stack, trained, "--checkpoint", str(bare), "--model", "googlenet", "--input-size", "16")
    assert "googlenet on 359 val images" in proc.stderr


def test_refuses_a_checkpoint_of_another_model(stack, trained):
    proc = evaluate(stack, trained, "--checkpoint", trained["checkpoint"], "--model", "resnet50", check=False)
    assert "is a checkpoint of model 'googlenet', not 'resnet50'" in one_error_line(proc)
    proc = evaluate(stack, trained, "--checkpoint", f"s3://{trained['bucket']}/runs/none/model", check=False)
    assert "no checkpoint published at" in one_error_line(proc)
    proc = evaluate(stack, trained, "--checkpoint", trained["checkpoint"], "--min-top1", "1.5", check=False)
    assert "evaluate.min_top1: must be in [0, 1]" in one_error_line(proc)
