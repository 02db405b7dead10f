"""Export → registry → infer round trip on the digits, with the real steps against the real local stack.

test_train.py's digits run (GoogLeNet, CIFAR-10 recipe, 16 px) → export (parity check, MinIO, MLflow Model
Registry, KFP Model artifact) → infer batch 1 over the same val split: acc.log's top-1 must equal
``mindzoo evaluate``'s top-1 on that split (batched eval pipeline, same preprocessing) within 0.5 points.
"""

from __future__ import annotations

import hashlib
import json

import pytest

pytestmark = [pytest.mark.runtime, pytest.mark.stack]

ENV = {"GLOG_v": "3"}
# What the pipeline (run-local, a pinned compiled pipeline, the launcher) tells a step about its image.
IMAGE_DIGEST = "sha256:" + hashlib.sha256(b"the image the export step ran in").hexdigest()
IMAGE_ENV = {"MINDZOO_IMAGE_DIGEST": IMAGE_DIGEST, "MINDZOO_IMAGE": "mindzoo-cpu:0.1.0", "MINDZOO_GIT_SHA": "abc1234"}


@pytest.fixture(scope="module")
def trained(stack, tmp_path_factory):
    """The shared digits run (trained by whichever module asks first) and `mindzoo evaluate`'s top-1 on it."""
    from test_train import digits_dataset, digits_training

    root = tmp_path_factory.mktemp("rt")
    dataset = digits_dataset(stack)
    outputs = digits_training(stack, dataset, root / "train-output.json")
    checkpoint = outputs["checkpoint"]["metadata"]["location"]
    evaluated = root / "evaluate-output.json"
    artifacts = {name: {"artifacts": [{"name": name, "uri": str(root / name), "metadata": {}}]}
                 for name in ("metrics", "confusion", "report")}
    stack.cli("evaluate", "--checkpoint", checkpoint, "--dataset", dataset["uri"], "--executor-input",
              json.dumps({"outputs": {"outputFile": str(evaluated), "artifacts": artifacts}}), env="runtime",
              extra_env=ENV)
    metrics = json.loads(evaluated.read_text())["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    run = checkpoint.rsplit("/", 1)[0]
    return {"bucket": dataset["bucket"], "dataset": dataset["uri"], "root": root, "run": run,
            "checkpoint": checkpoint, "top1": metrics["top1"]}


@pytest.fixture(scope="module")
def exported(stack, trained):
    out = trained["root"] / "executor_output.json"
    executor = {"outputs": {"outputFile": str(out), "artifacts": {"model": {"artifacts": [
        {"name": "model", "uri": "", "type": {"schemaTitle": "system.Model"}}]}}}}
    proc = stack.cli("export", "--checkpoint", trained["checkpoint"], "--executor-input", json.dumps(executor),
                     env="runtime", extra_env={**ENV, **IMAGE_ENV})
    return proc, json.loads(out.read_text())


def test_export_publishes_next_to_the_run_with_kfp_model_metadata(trained, exported):
    from mindzoo.storage import S3Uri, Storage

    proc, executor = exported
    assert "parity: max abs logit difference" in proc.stderr and "registered googlenet_cifar10 version" in proc.stderr
    model = executor["artifacts"]["model"]["artifacts"][0]
    assert model["uri"] == f"{trained['run']}/export"
    meta = model["metadata"]
    assert meta["format"] == "mindir" and meta["input_shape"] == [1, 3, 16, 16]
    assert meta["size_bytes"] > 1000 and len(meta["sha256"]) == 64 and meta["parity_max_abs_diff"] <= 1e-3
    manifest = Storage.connect().read_manifest(S3Uri.parse(model["uri"]))
    assert {"googlenet.mindir", "googlenet.onnx", "labels.json", "preprocessing.json", "README.md",
            "export.json"} <= set(manifest.files)
    assert manifest.files["googlenet.mindir"]["sha256"] == meta["sha256"]
    assert manifest.meta["lineage"]["dataset_hash"] and manifest.meta["lineage"]["train_mlflow_run_id"]
    assert manifest.meta["lineage"]["image_digest"] == IMAGE_DIGEST


def test_registry_has_the_version_with_its_artifacts_in_minio(stack, exported):
    from minio import Minio
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=stack.mlflow_uri, registry_uri=stack.mlflow_uri)
    meta = exported[1]["artifacts"]["model"]["artifacts"][0]["metadata"]
    version = client.get_model_version("googlenet_cifar10", meta["registered_version"])
    assert version.source == f"runs:/{version.run_id}/model" or version.source.endswith("/model")
    listed = {a.path for a in client.list_artifacts(version.run_id, "model")}
    assert {"model/googlenet.mindir", "model/README.md", "model/labels.json", "model/preprocessing.json"} <= listed
    readme = open(client.download_artifacts(version.run_id, "model/README.md")).read()
    assert "Lineage" in readme and f"- image_digest: {IMAGE_DIGEST}" in readme  # the model card
    assert {k: version.tags.get(k) for k in ("image_digest", "image", "git_sha")} == {
        "image_digest": IMAGE_DIGEST, "image": "mindzoo-cpu:0.1.0", "git_sha": "abc1234"}  # the registry entry
    assert client.get_run(version.run_id).data.tags["image_digest"] == IMAGE_DIGEST  # the step's MLflow run
    minio = Minio(stack.s3_endpoint, stack.access_key, stack.secret_key, secure=False)
    keys = [o.object_name for b in minio.list_buckets() for o in minio.list_objects(b.name, recursive=True)
            if o.object_name.endswith(f"{version.run_id}/artifacts/model/googlenet.mindir")]
    assert keys, "the registered MindIR is not in MinIO"


def test_infer_top1_equals_evaluation_top1_and_counts_every_image(stack, trained, exported, tmp_path):
    out = tmp_path / "result"
    proc = stack.cli("infer", "--model", f"{trained['run']}/export", "--data", trained["dataset"],
                     "--output-dir", str(out), env="runtime", extra_env=ENV)
    line = (out / "acc.log").read_text().strip()
    from mindzoo.data.pipeline import describe
    from mindzoo.infer.report import parse_acc

    acc = parse_acc(line)  # GoogLeNet's CIFAR-10 postprocess line
    assert acc["images"] == describe(trained["dataset"])["splits"]["val"]["images"]
    assert abs(acc["top1"] - trained["top1"]) <= 0.005, (line, trained["top1"])
    assert "runtime: mindspore" in proc.stderr
