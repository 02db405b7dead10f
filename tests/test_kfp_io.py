"""KFP executor input/output handling (pure logic; the container tests use it for real)."""

from __future__ import annotations

import json

from mindzoo.kfp_io import ExecutorIO, uri_to_path


def executor_input(tmp_path):
    return {
        "inputs": {"parameterValues": {"epochs": 3},
                   "artifacts": {"data": {"artifacts": [{"uri": "s3://b/data", "metadata": {"n": 1}}]}}},
        "outputs": {
            "outputFile": str(tmp_path / "out" / "executor_output.json"),
            "artifacts": {"model": {"artifacts": [{"name": "model", "uri": str(tmp_path / "model"),
                                                   "type": {"schemaTitle": "system.Model"}}]}},
        },
    }


def test_paths_of_remote_uris_follow_the_launcher_mounts():
    assert uri_to_path("minio://mlpipeline/v2/x") == "/minio/mlpipeline/v2/x"
    assert uri_to_path("s3://b/k") == "/s3/b/k"
    assert uri_to_path("gs://b/k") == "/gcs/b/k"
    assert uri_to_path("/local/outputs/x") == "/local/outputs/x"


def test_reads_inputs_and_writes_artifact_metadata(tmp_path):
    io = ExecutorIO.parse(json.dumps(executor_input(tmp_path)))
    assert io.active
    assert io.input_parameter("epochs") == 3
    assert io.input_artifact("data").uri == "s3://b/data"
    assert io.output_artifact("model").path == str(tmp_path / "model")
    io.set_artifact("model", metadata={"format": "MINDIR", "sha256": "ab"})
    io.set_parameter("top1", 0.93)
    written = json.loads(io.write().read_text())
    model = written["artifacts"]["model"]["artifacts"][0]
    assert model["uri"] == str(tmp_path / "model")
    assert model["metadata"] == {"format": "MINDIR", "sha256": "ab"}
    assert written["parameterValues"] == {"top1": 0.93}


def test_input_from_a_file_path(tmp_path):
    path = tmp_path / "in.json"
    path.write_text(json.dumps(executor_input(tmp_path)))
    assert ExecutorIO.parse(str(path)).input_parameter("epochs") == 3


def test_outside_kfp_nothing_is_written():
    io = ExecutorIO.parse("")
    io.set_artifact("model", uri="s3://b/m", metadata={"a": 1})
    assert not io.active and io.write() is None
