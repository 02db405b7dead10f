"""KFP executor input/output handling (pure logic; the container tests use it for real)."""

from __future__ import annotations

import json

from mindzoo.kfp_io import POINTER_FORMAT, ExecutorIO, follow_pointer, uri_to_path


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


def test_a_big_output_is_a_pointer_file_that_consumers_follow(tmp_path):
    io = ExecutorIO.parse(json.dumps(executor_input(tmp_path)))
    io.point("model", "s3://mindzoo/runs/r/model", {"model": "googlenet", "format": "mindir"})
    model = json.loads(io.write().read_text())["artifacts"]["model"]["artifacts"][0]
    assert model["uri"] == str(tmp_path / "model")  # KFP's own location: what KFP copies stays tiny
    assert model["metadata"] == {"model": "googlenet", "format": "mindir", "location": "s3://mindzoo/runs/r/model"}
    assert (tmp_path / "model").stat().st_size < 200
    assert follow_pointer(str(tmp_path / "model")) == "s3://mindzoo/runs/r/model"


def test_follow_pointer_leaves_everything_else_alone(tmp_path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"\x00\x01 not json")
    other = tmp_path / "other.json"
    other.write_text('{"location": "s3://x/y"}')  # JSON, but not a pointer
    for value in ("s3://mindzoo/datasets/abc", "models:/googlenet/3", str(ckpt), str(other), str(tmp_path), "",
                  str(tmp_path / "missing")):
        assert follow_pointer(value) == value


def test_a_pointer_downloaded_by_the_kfp_launcher_is_found_from_its_uri(tmp_path, monkeypatch):
    """On a cluster the component passes the artifact's s3:// URI; the launcher put the file at /s3/<bucket>/..."""
    import mindzoo.kfp_io as kfp_io

    monkeypatch.setitem(kfp_io._MOUNTS, "s3://", str(tmp_path / "s3") + "/")  # the launcher's /s3/ mount, here
    pointer = tmp_path / "s3" / "mlpipeline" / "v2" / "dataset"
    pointer.parent.mkdir(parents=True)
    pointer.write_text(json.dumps({"format": POINTER_FORMAT, "location": "s3://mindzoo/datasets/abc"}))
    assert follow_pointer("s3://mlpipeline/v2/dataset") == "s3://mindzoo/datasets/abc"
    assert follow_pointer("s3://mlpipeline/v2/not-downloaded") == "s3://mlpipeline/v2/not-downloaded"


def test_relay_points_uris_and_keeps_metadata_only_artifacts(tmp_path):
    io = ExecutorIO.parse(json.dumps(executor_input(tmp_path)))
    io.relay({"model": {"uri": "s3://b/run/model", "metadata": {"a": 1}}, "metrics": {"uri": "", "metadata": {"t": 2}}})
    body = json.loads(io.write().read_text())["artifacts"]
    assert body["model"]["artifacts"][0]["metadata"]["location"] == "s3://b/run/model"
    assert body["metrics"]["artifacts"][0]["metadata"] == {"t": 2}
