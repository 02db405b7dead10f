"""`mindzoo locate` against the real stack: a published prefix or a registered version becomes a pointer artifact.

infer_pipeline turns its URI parameters into artifacts with this step (components/locate/README.md says why not
``dsl.importer``); the pointer it writes is what the consuming steps follow (mindzoo.kfp_io.follow_pointer).
"""

from __future__ import annotations

import json

import pytest

from test_cli import assert_one_clear_error

pytestmark = [pytest.mark.runtime, pytest.mark.stack]


@pytest.fixture
def published(stack, bucket, tmp_path):
    """A published prefix (two files), a training run's prefix, and a registered version of the first."""
    from mlflow.tracking import MlflowClient

    from mindzoo.storage import S3Uri, Storage

    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "model.mindir").write_bytes(b"\0" * 1000)
    (folder / "labels.json").write_text("[]")
    store = Storage.connect()
    store.publish(folder, S3Uri(bucket, "runs/r1/export"))
    store.put_bytes(b"{}", S3Uri(bucket, "runs/r1/run.json"))
    client = MlflowClient(stack.mlflow_uri, registry_uri=stack.mlflow_uri)
    name = f"locate-{bucket}"
    client.create_registered_model(name)
    tagged = client.create_model_version(name, f"s3://{bucket}/runs/r1/export")
    client.set_model_version_tag(name, tagged.version, "export_uri", f"s3://{bucket}/runs/r1/export")
    client.set_registered_model_alias(name, "champion", tagged.version)
    untagged = client.create_model_version(name, f"s3://{bucket}/elsewhere")
    return {"prefix": f"s3://{bucket}/runs/r1/export", "run": f"s3://{bucket}/runs/r1", "name": name,
            "version": tagged.version, "untagged": untagged.version}


def locate(stack, tmp_path, uri, kind, output="model", check=True):
    """Run the step as a KFP task would: the component's output artifact, whose file becomes the pointer, beside
    the `executor-logs` artifact KFP 2.17's backend declares for every task."""
    out, target = tmp_path / "executor-output.json", tmp_path / "artifact" / output
    executor = {"outputs": {"outputFile": str(out), "artifacts": {name: {"artifacts": [
        {"name": name, "uri": str(tmp_path / "artifact" / name), "type": {"schemaTitle": "system.Artifact"}}]}
        for name in (output, "executor-logs")}}}
    proc = stack.cli("locate", "--uri", uri, "--kind", kind, "--executor-input", json.dumps(executor),
                     env="runtime", check=check)
    return proc, out, target


@pytest.mark.parametrize("form", ["prefix", "version", "alias"])
def test_a_published_prefix_or_registered_version_becomes_a_pointer_to_the_prefix(stack, tmp_path, published, form):
    from mindzoo.kfp_io import POINTER_FORMAT, follow_pointer

    uri = {"prefix": published["prefix"], "version": f"models:/{published['name']}/{published['version']}",
           "alias": f"models:/{published['name']}@champion"}[form]
    proc, out, target = locate(stack, tmp_path, uri, "model")
    pointer = json.loads(target.read_text())
    assert pointer["format"] == POINTER_FORMAT and pointer["location"] == published["prefix"]
    assert follow_pointer(str(target)) == published["prefix"]  # what export and infer do with it
    meta = json.loads(out.read_text())["artifacts"]["model"]["artifacts"][0]["metadata"]
    assert meta["location"] == published["prefix"] and meta["kind"] == "model"
    assert (meta["files"], meta["size_bytes"]) == (2, 1002)
    assert meta.get("registered_model", "") == ("" if form == "prefix" else uri)
    assert "2 files" in proc.stderr.splitlines()[0]


def test_a_dataset_is_located_as_a_dataset(stack, tmp_path, published):
    _, out, target = locate(stack, tmp_path, published["prefix"], "dataset", output="dataset")
    assert json.loads(target.read_text())["location"] == published["prefix"]
    assert json.loads(out.read_text())["artifacts"]["dataset"]["artifacts"][0]["metadata"]["kind"] == "dataset"


def test_a_checkpoint_is_written_to_the_model_output_and_a_missing_output_is_an_error(stack, tmp_path, published):
    _, out, target = locate(stack, tmp_path / "ok", published["prefix"], "checkpoint")
    assert json.loads(target.read_text())["location"] == published["prefix"]
    assert set(json.loads(out.read_text())["artifacts"]) == {"model"}  # not KFP's executor-logs
    proc, out, target = locate(stack, tmp_path / "bad", published["prefix"], "dataset", output="model", check=False)
    assert_one_clear_error(proc, "the executor input declares no output artifact 'dataset' for a dataset "
                                 "(it declares: model, executor-logs)")
    assert not out.exists() and not target.exists()


@pytest.mark.parametrize("case, kind, starts", [
    ("empty", "model", "locate.uri: must not be empty"),
    ("http", "model", "locate.uri: a model must be s3://... or models:/..."),
    ("models-as-dataset", "dataset", "locate.uri: a dataset must be s3://..."),
    ("models-as-checkpoint", "checkpoint", "locate.uri: a checkpoint must be s3://..."),
    ("unpublished", "dataset", "no dataset published there (no s3://"),
    ("run", "checkpoint", "it is a training run: its final checkpoint is s3://"),
    ("unknown-version", "model", "not in the Model Registry"),
    ("untagged-version", "model", "was not registered by `mindzoo export`"),
    ("no-bucket", "model", "no bucket in"),
])
def test_bad_uris_are_one_error_line_and_write_no_pointer(stack, tmp_path, published, case, kind, starts):
    uri = {"empty": " ", "http": "http://example.com/model", "models-as-dataset": f"models:/{published['name']}/1",
           "models-as-checkpoint": f"models:/{published['name']}/1",
           "unpublished": published["prefix"].replace("export", "nothing"), "run": published["run"],
           "unknown-version": f"models:/{published['name']}/99",
           "untagged-version": f"models:/{published['name']}/{published['untagged']}", "no-bucket": "s3:///x"}[case]
    proc, out, target = locate(stack, tmp_path, uri, kind, check=False)
    assert_one_clear_error(proc, starts)
    assert not out.exists() and not target.exists()
