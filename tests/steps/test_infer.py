"""`mindzoo infer` against the real stack: a MindIR published to MinIO, results published and tracked in MLflow."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.runtime, pytest.mark.stack]


def test_infer_from_minio_publishes_results_and_logs_metrics(stack, bucket, tmp_path):
    import mindspore as ms
    from mlflow.tracking import MlflowClient

    from mindzoo.archs import get_data_config
    from mindzoo.config import DigitsConfig
    from mindzoo.datasets import digits
    from mindzoo.export import PREPROCESSING_JSON, card, formats, source
    from mindzoo.registry import create_model
    from mindzoo.storage import S3Uri, Storage

    source.setup("cpu")
    ms.set_seed(0)
    net = create_model("googlenet", num_classes=10, input_size=32)
    net.set_train(False)
    folder = tmp_path / "export"
    formats.export(net, (1, 3, 32, 32), folder, "googlenet", ["mindir"])
    (folder / PREPROCESSING_JSON).write_text(json.dumps(card.preprocessing(
        get_data_config("googlenet_cifar10").at_size(32), (1, 3, 32, 32))))
    store = Storage.connect()
    store.publish(folder, S3Uri(bucket, "export"))
    digits.make(DigitsConfig(format="imagefolder", size=32), tmp_path / "digits")
    stack.cli("infer", "--model", f"s3://{bucket}/export", "--data", str(tmp_path / "digits"), "--max-images", "50",
              "--output-dir", str(tmp_path / "out"), "--output", f"s3://{bucket}/infer", "--cache-dir",
              str(tmp_path / "cache"), env="runtime", extra_env={"GLOG_v": "3"})
    published = store.read_manifest(S3Uri(bucket, "infer"))
    assert {"acc.log", "predictions.csv", "latency.json"} <= set(published.files)
    assert published.meta["images"] == 50 and published.meta["runtime"].startswith("mindspore")
    client = MlflowClient(tracking_uri=stack.mlflow_uri)
    exp = client.get_experiment_by_name("mindzoo/unlinked")  # a bare MindIR: no export.json names its model
    run = client.search_runs([exp.experiment_id], max_results=1)[0]
    assert run.data.metrics["infer/images"] == 50 and "infer/latency_p99_ms" in run.data.metrics
    assert run.data.tags["runtime"].startswith("mindspore")


def test_model_cache_is_keyed_by_bucket_and_key(tmp_path):
    from mindzoo.steps.infer import model_cache
    from mindzoo.storage import S3Uri

    paths = {model_cache(tmp_path, S3Uri.parse(u)) for u in
             ("s3://a/runs/x/export", "s3://b/runs/x/export", "s3://a/runs_x/export", "s3://a/runs/x_export")}
    assert len(paths) == 4  # neither another store's same key nor a key that flattens alike shares a copy
    assert all(p.parent == tmp_path / "models" for p in paths)
    assert model_cache(tmp_path, S3Uri.parse("s3://a/../../etc")).parent == tmp_path / "models"
