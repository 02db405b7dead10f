"""`mindzoo preprocess` end to end: the real CLI against the real MinIO (and MLflow) of the local stack."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mindzoo.config import DigitsConfig
from mindzoo.datasets import digits
from mindzoo.storage import MANIFEST, S3Uri, Storage

pytestmark = [pytest.mark.runtime, pytest.mark.stack]

RUNTIME_BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "mindzoo"
OFFLINE = ("--no-tracking-enabled",)  # most runs skip MLflow to keep the suite fast; one test checks it


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """The bundled digits in both layouts, written once per module (tests copy before changing them)."""
    root = tmp_path_factory.mktemp("raw")
    for fmt in ("cifar10", "imagefolder"):
        digits.make(DigitsConfig(format=fmt), root / fmt)
    return root


def copy_of(raw, fmt, tmp_path) -> Path:
    dst = tmp_path / fmt
    shutil.copytree(raw / fmt, dst)
    return dst


def preprocess(stack, bucket, source, *args, check=True, cache=None):
    return stack.cli("preprocess", "--source", str(source), "--output", f"s3://{bucket}/datasets",
                     "--cache-dir", str(cache or stack.state_dir / "cache"), *args, env="runtime", check=check)


def objects(stack, bucket, prefix="datasets"):
    from minio import Minio

    client = Minio(stack.s3_endpoint, stack.access_key, stack.secret_key, secure=False)
    return {o.object_name: (o.etag, o.last_modified) for o in client.list_objects(bucket, prefix, recursive=True)}


def published(bucket) -> tuple[S3Uri, object]:
    store = Storage.connect()
    prefixes = {k.split("/")[1] for k in store.list(S3Uri(bucket, "datasets")) if k.endswith(MANIFEST)}
    assert len(prefixes) == 1, prefixes
    prefix = S3Uri(bucket, f"datasets/{prefixes.pop()}")
    return prefix, store.read_manifest(prefix)


def read_records(folder: Path, info: dict, split: str) -> list[dict]:
    import mindspore.dataset as ds

    files = [str(folder / s["file"]) for s in info["splits"][split]["shards"]]
    data = ds.MindDataset(files, columns_list=["image", "label", "file_id"], shuffle=False)
    return [{"image": r["image"].tobytes(), "label": int(r["label"]), "file_id": str(r["file_id"])}
            for r in data.create_dict_iterator(output_numpy=True)]


def test_cifar10_round_trip_is_pixel_exact_and_tracked(stack, bucket, raw, tmp_path):
    import mindspore.dataset.vision as vision

    from mindzoo.data.cache import local_dataset
    from mindzoo.data.pipeline import describe

    proc = preprocess(stack, bucket, raw / "cifar10", "--report-dir", str(tmp_path / "report"))
    assert "content hash" in proc.stderr and "images/s" in proc.stderr
    prefix, manifest = published(bucket)
    info = manifest.meta
    assert info["classes"] == list(digits.CLASS_NAMES)
    assert info["splits"]["train"]["images"] == 1438 and info["splits"]["val"]["images"] == 359
    assert {s["file"] for sp in info["splits"].values() for s in sp["shards"]} <= set(manifest.files)
    assert all(manifest.files[s["file"]]["size"] == s["bytes"] for s in info["splits"]["train"]["shards"])
    assert all(len(manifest.files[s["index_file"]]["sha256"]) == 64 for s in info["splits"]["val"]["shards"])
    assert describe(str(prefix), cache_dir=tmp_path / "cache")["content_hash"] == info["content_hash"]
    local = local_dataset(str(prefix), cache_dir=tmp_path / "cache")
    for split, batch_files in (("train", [f"data_batch_{i}.bin" for i in range(1, 6)]), ("val", ["test_batch.bin"])):
        originals = {}
        for name in batch_files:
            recs = np.frombuffer((raw / "cifar10" / name).read_bytes(), np.uint8).reshape(-1, 3073)
            originals.update({f"{name}:{i}": rec for i, rec in enumerate(recs)})
        records = read_records(local, info, split)
        assert sorted(r["file_id"] for r in records) == sorted(originals)
        for i, r in enumerate(records):
            rec = originals[r["file_id"]]
            pixels = np.asarray(Image.open(io.BytesIO(r["image"])))
            assert r["label"] == rec[0]
            assert np.array_equal(pixels, rec[1:].reshape(3, 32, 32).transpose(1, 2, 0))
            if i % 50 == 0:  # and through MindSpore's own decoder, as training reads them
                assert np.array_equal(vision.Decode()(np.frombuffer(r["image"], np.uint8)), pixels)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["quarantined"] == [] and report["splits"]["train"]["per_class"]["zero"] > 100
    assert (tmp_path / "report" / "report.html").read_text().startswith("<!doctype html>")
    _assert_tracked(stack, info["content_hash"])


def _assert_tracked(stack, content_hash):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(stack.mlflow_uri)
    experiment = client.get_experiment_by_name("mindzoo/datasets")
    runs = client.search_runs([experiment.experiment_id], f"tags.content_hash = '{content_hash}'")
    assert runs and runs[0].data.metrics["data/train_images"] == 1438
    assert {a.path for a in client.list_artifacts(runs[0].info.run_id, "report")} >= {"report/report.md"}


def test_imagefolder_round_trip_keeps_the_jpeg_bytes(stack, bucket, raw, tmp_path):
    from mindzoo.data.cache import local_dataset

    preprocess(stack, bucket, raw / "imagefolder", *OFFLINE)
    prefix, manifest = published(bucket)
    info = manifest.meta
    assert info["classes"] == [digits.synset(i) for i in range(10)]
    local = local_dataset(str(prefix), cache_dir=tmp_path / "cache")
    fetched = (local / MANIFEST).stat().st_mtime_ns
    assert local_dataset(str(prefix), cache_dir=tmp_path / "cache") == local
    assert (local / MANIFEST).stat().st_mtime_ns == fetched  # the cached copy is reused, not fetched again
    for split in ("train", "val"):
        files = sorted((raw / "imagefolder" / split).rglob("*.JPEG"))
        records = read_records(local, info, split)
        assert len(records) == len(files) == info["splits"][split]["images"]
        for r in records:
            path = raw / "imagefolder" / r["file_id"]
            assert r["image"] == path.read_bytes()
            assert r["label"] == info["label_map"][path.parent.name]


def test_second_run_reuses_the_published_dataset(stack, bucket, raw):
    first = preprocess(stack, bucket, raw / "cifar10", *OFFLINE)
    before, (_, manifest) = objects(stack, bucket), published(bucket)
    started = time.monotonic()
    second = preprocess(stack, bucket, raw / "cifar10", *OFFLINE)
    assert time.monotonic() - started < 30
    assert "reusing" in second.stderr and "converting" not in second.stderr, second.stderr
    assert objects(stack, bucket) == before  # same keys, ETags and modification times: nothing rewritten
    assert published(bucket)[1].version == manifest.version
    assert "converting" in first.stderr
    forced = preprocess(stack, bucket, raw / "cifar10", "--force", *OFFLINE)
    assert "converting" in forced.stderr and published(bucket)[1].version != manifest.version


def test_changed_settings_make_a_new_dataset(stack, bucket, raw):
    preprocess(stack, bucket, raw / "cifar10", *OFFLINE)
    preprocess(stack, bucket, raw / "cifar10", "--shard-size", "500", *OFFLINE)
    manifests = [k for k in objects(stack, bucket) if k.endswith(MANIFEST)]
    assert len(manifests) == 2


@pytest.mark.parametrize("phase", ["convert", "upload"])
def test_killed_run_publishes_nothing_and_a_rerun_completes(stack, bucket, raw, tmp_path, phase):
    source = copy_of(raw, "imagefolder", tmp_path)
    workers = "1" if phase == "convert" else "2"  # slow conversion to kill it mid-way; else reach the upload
    args = ["preprocess", "--source", str(source), "--output", f"s3://{bucket}/datasets", "--shard-size", "16",
            "--workers", workers, "--cache-dir", str(tmp_path / "cache"), *OFFLINE]
    env = {**os.environ, "MINDZOO_STATE_DIR": str(stack.state_dir)}
    proc = subprocess.Popen([str(RUNTIME_BIN), *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(phase, proc, stack, bucket)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    keys = objects(stack, bucket)
    assert not [k for k in keys if k.endswith(MANIFEST)], "a killed run published a manifest"
    assert phase == "convert" or keys, "the kill should have landed during the upload"
    rerun = preprocess(stack, bucket, source, "--shard-size", "16", "--workers", "2", *OFFLINE,
                       cache=tmp_path / "cache")
    assert "published" in rerun.stderr
    assert not list((tmp_path / "cache" / "work").iterdir())  # the killed run's staging folder was removed
    prefix, manifest = published(bucket)
    versions = {k.split("/")[2] for k in objects(stack, bucket) if "/v-" in k}
    assert versions == {f"v-{manifest.version}"}  # the killed run's partial upload was collected


def _wait_for(phase, proc, stack, bucket, timeout=120):
    deadline = time.monotonic() + timeout
    if phase == "convert":
        for line in proc.stderr:
            if "converting" in line:
                time.sleep(0.3)
                return
            assert time.monotonic() < deadline
        pytest.fail("the step ended before converting")
    while time.monotonic() < deadline:
        if objects(stack, bucket):
            return
        assert proc.poll() is None, "the step ended before the upload was seen"
        time.sleep(0.02)
    pytest.fail("no upload started")


def test_executor_output_names_the_published_prefix(stack, bucket, raw, tmp_path):
    out = tmp_path / "kfp"
    executor_input = {
        "inputs": {"parameterValues": {"source": str(raw / "cifar10")}},
        "outputs": {
            "outputFile": str(out / "executor_output.json"),
            "artifacts": {
                "dataset": {"artifacts": [{"name": "dataset", "uri": str(out / "dataset"),
                                           "type": {"schemaTitle": "system.Dataset"}}]},
                "report": {"artifacts": [{"name": "report", "uri": str(out / "report"),
                                          "type": {"schemaTitle": "system.Markdown"}}]},
            },
        },
    }
    for attempt in ("first", "reused"):
        preprocess(stack, bucket, raw / "cifar10", "--executor-input", json.dumps(executor_input), *OFFLINE)
        body = json.loads((out / "executor_output.json").read_text())
        prefix, manifest = published(bucket)
        dataset = body["artifacts"]["dataset"]["artifacts"][0]
        # The artifact stays KFP's (its file a small pointer), so KFP never copies the shards into a pod.
        assert dataset["uri"] == str(out / "dataset") and dataset["metadata"]["location"] == str(prefix)
        assert json.loads((out / "dataset").read_text())["location"] == str(prefix)
        meta = dataset["metadata"]
        assert meta["train_images"] == 1438 and meta["val_images"] == 359 and meta["num_classes"] == 10
        assert meta["content_hash"] == manifest.meta["content_hash"] and str(prefix).endswith(meta["content_hash"][:16])
        assert meta["reused"] is (attempt == "reused")
        assert (out / "report").read_text().startswith("# Data report")


def test_s3_sources_published_or_plain(stack, bucket, raw, tmp_path):
    from minio import Minio

    stack.cli("storage", "cp", str(raw / "imagefolder"), f"s3://{bucket}/raw/tree", env="runtime")
    client = Minio(stack.s3_endpoint, stack.access_key, stack.secret_key, secure=False)
    for path in sorted((raw / "cifar10").iterdir()):
        client.fput_object(bucket, f"raw/cifar/{path.name}", str(path))
    for source, fmt, train in (("raw/tree", "imagefolder", 1438), ("raw/cifar", "cifar10", 1438)):
        proc = preprocess(stack, bucket, f"s3://{bucket}/{source}", *OFFLINE)
        assert f"({fmt})" in proc.stderr
        again = preprocess(stack, bucket, f"s3://{bucket}/{source}", *OFFLINE)
        assert "reusing" in again.stderr
    metas = [Storage.connect().read_manifest(S3Uri(bucket, k.rsplit("/", 1)[0])).meta
             for k in objects(stack, bucket) if k.endswith(MANIFEST)]
    assert sorted(m["splits"]["train"]["images"] for m in metas) == [1438, 1438]


@pytest.mark.parametrize("label_format", ["json", "text"])
def test_flat_val_folder_with_a_label_file(stack, bucket, raw, tmp_path, label_format):
    source = copy_of(raw, "imagefolder", tmp_path)
    expected = {}
    for path in sorted((source / "val").rglob("*.JPEG")):
        expected[path.name] = int(path.parent.name[1:])
        path.rename(source / "val" / path.name)
    for folder in (source / "val").iterdir():
        if folder.is_dir():
            folder.rmdir()
    if label_format == "json":
        labels = tmp_path / "imagenet_label.json"
        labels.write_text(json.dumps(expected))
    else:
        labels = tmp_path / "img_id_2_label.txt"
        labels.write_text("".join(f"{Path(n).stem}:{v}\n" for n, v in expected.items()))
    preprocess(stack, bucket, source, "--label-file", str(labels), *OFFLINE)
    _, manifest = published(bucket)
    from mindzoo.data.cache import local_dataset

    records = read_records(local_dataset(f"s3://{bucket}/{manifest.uri.split('/', 3)[3]}",
                                         cache_dir=tmp_path / "cache"), manifest.meta, "val")
    assert {Path(r["file_id"]).name: r["label"] for r in records} == expected


def test_bad_images_are_quarantined_and_reported(stack, bucket, raw, tmp_path):
    source = copy_of(raw, "imagefolder", tmp_path)
    victims = sorted((source / "train").rglob("*.JPEG"))[:2]
    victims[0].write_bytes(victims[0].read_bytes()[:200])
    victims[1].write_bytes(b"this is not a JPEG at all")
    preprocess(stack, bucket, source, "--max-bad-fraction", "0.01", "--report-dir", str(tmp_path / "r"), *OFFLINE)
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert sorted(q["file"] for q in report["quarantined"]) == sorted(
        v.relative_to(source).as_posix() for v in victims)
    reasons = " ".join(q["reason"] for q in report["quarantined"])
    assert "truncated" in reasons and "not an image" in reasons
    assert report["splits"]["train"]["images"] == 1438 - 2
    assert "Quarantined images" in (tmp_path / "r" / "report.md").read_text()


def test_a_changed_file_under_the_same_s3_prefix_is_converted_again(stack, bucket, raw, tmp_path):
    """What the pipeline relies on now that KFP does not cache preprocess: the content decides, not the URI."""
    from minio import Minio

    client = Minio(stack.s3_endpoint, stack.access_key, stack.secret_key, secure=False)
    for path in sorted((raw / "cifar10").iterdir()):
        client.fput_object(bucket, f"raw/cifar/{path.name}", str(path))
    first = preprocess(stack, bucket, f"s3://{bucket}/raw/cifar", *OFFLINE)
    changed = bytearray((raw / "cifar10" / "data_batch_2.bin").read_bytes())
    changed[100] ^= 0xFF  # one pixel, same size
    client.put_object(bucket, "raw/cifar/data_batch_2.bin", io.BytesIO(bytes(changed)), len(changed))
    second = preprocess(stack, bucket, f"s3://{bucket}/raw/cifar", *OFFLINE)
    assert "converting" in first.stderr and "converting" in second.stderr, second.stderr
    assert len([k for k in objects(stack, bucket) if k.endswith(MANIFEST)]) == 2


def test_two_runs_of_the_same_source_at_once_both_publish_a_complete_dataset(stack, bucket, raw, tmp_path):
    """Same content hash, same prefix, started together: neither run's cleanup takes the other's upload."""
    from mindzoo.data.cache import local_dataset

    env = {**os.environ, "MINDZOO_STATE_DIR": str(stack.state_dir)}
    args = ["preprocess", "--source", str(raw / "cifar10"), "--output", f"s3://{bucket}/datasets", "--workers", "1",
            "--shard-size", "200", *OFFLINE]
    procs = [subprocess.Popen([str(RUNTIME_BIN), *args, "--cache-dir", str(tmp_path / f"cache-{i}")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(2)]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert all("published" in e for e in errors), errors  # both converted and published: a real race
    prefix, manifest = published(bucket)
    local = local_dataset(str(prefix), cache_dir=tmp_path / "read")
    for split, count in (("train", 1438), ("val", 359)):
        assert len(read_records(local, manifest.meta, split)) == count
