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


# -- bad inputs: one clear error line, nothing published ------------------------------------------------------


def _missing(raw, tmp):
    return tmp / "nope", ()


def _empty_folder(raw, tmp):
    (tmp / "empty").mkdir()
    return tmp / "empty", ()


def _empty_cifar(raw, tmp):
    src = copy_of(raw, "cifar10", tmp)
    for path in src.glob("*.bin"):
        path.write_bytes(b"")
    return src, ()


def _cifar_bad_size(raw, tmp):
    src = copy_of(raw, "cifar10", tmp)
    path = src / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-100])
    return src, ()


def _cifar_bad_label(raw, tmp):
    src = copy_of(raw, "cifar10", tmp)
    data = bytearray((src / "data_batch_3.bin").read_bytes())
    data[3073 * 7] = 12
    (src / "data_batch_3.bin").write_bytes(bytes(data))
    return src, ()


def _empty_class(raw, tmp):
    src = copy_of(raw, "imagefolder", tmp)
    for path in (src / "train" / digits.synset(4)).iterdir():
        path.unlink()
    return src, ()


def _val_class_not_in_train(raw, tmp):
    src = copy_of(raw, "imagefolder", tmp)
    (src / "val" / digits.synset(3)).rename(src / "val" / "n99999999")
    return src, ()


def _truncated_jpegs(raw, tmp):
    src = copy_of(raw, "imagefolder", tmp)
    path = sorted((src / "val").rglob("*.JPEG"))[5]
    path.write_bytes(path.read_bytes()[:300])
    return src, ("--max-bad-fraction", "0")


def _non_image_file(raw, tmp):
    src = copy_of(raw, "imagefolder", tmp)
    (src / "train" / digits.synset(1) / "notes.txt").write_text("hello")
    return src, ()


def _symlink_loop(raw, tmp):
    src = copy_of(raw, "imagefolder", tmp)
    (src / "train" / digits.synset(2) / "again").symlink_to("..")
    return src, ()


def _missing_label_file(raw, tmp):
    src = copy_of(raw, "imagefolder", tmp)
    for path in list((src / "val").rglob("*.JPEG")):
        path.rename(src / "val" / path.name)
    for folder in [p for p in (src / "val").iterdir() if p.is_dir()]:
        folder.rmdir()
    return src, ()


def _bad_workers(raw, tmp):
    return raw / "cifar10", ("--workers", "0")


def _cifar_without(*names):
    def make(raw, tmp):
        src = copy_of(raw, "cifar10", tmp)
        for name in names:
            (src / name).unlink()
        return src, ()
    return make


def _cifar100_bad(raw, tmp, size=3074 * 4, files=("train.bin", "test.bin")):
    src = tmp / "c100" / "cifar-100-binary"
    src.mkdir(parents=True)
    for name in files:
        (src / name).write_bytes(bytes(size))
    return src.parent, ()


def _png_header(width, height) -> bytes:
    """A PNG that declares ``width`` x ``height`` (a decompression bomb's header; no pixel data to speak of)."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _oversized(limit_args, width, height):
    def make(raw, tmp):
        src = copy_of(raw, "imagefolder", tmp)
        (src / "val" / digits.synset(2) / "huge.png").write_bytes(_png_header(width, height))
        return src, ("--max-bad-fraction", "0", *limit_args)
    return make


def _cifar100_label(raw, tmp):
    src, args = _cifar100_bad(raw, tmp)
    data = bytearray((src / "cifar-100-binary" / "train.bin").read_bytes())
    data[3074 + 1] = 100  # the fine label byte of record 1
    (src / "cifar-100-binary" / "train.bin").write_bytes(bytes(data))
    return src, args


def _all_train_bad(raw, tmp):
    src = copy_of(raw, "imagefolder", tmp)
    for path in (src / "train").rglob("*.JPEG"):
        path.write_bytes(b"not a jpeg")
    return src, ("--max-bad-fraction", "1")


BAD_INPUTS = {
    "missing path": (_missing, "does not exist"),
    "empty folder": (_empty_folder, "no dataset found"),
    "empty dataset": (_empty_cifar, "empty dataset"),
    "cifar size": (_cifar_bad_size, "is not a multiple of the 3,073-byte"),
    "cifar label": (_cifar_bad_label, "record 7 has label 12"),
    "empty class folder": (_empty_class, f"class folder train/{digits.synset(4)} is empty"),
    "val class not in train": (_val_class_not_in_train, "val class 'n99999999' is not a train class"),
    "truncated jpeg": (_truncated_jpegs, "cannot be used"),
    "non-image file": (_non_image_file, "notes.txt is not an image file"),
    "symlink loop": (_symlink_loop, "symlink loop"),
    "flat val without labels": (_missing_label_file, "give --label-file"),
    "bad flag": (_bad_workers, "preprocess.workers: must be >= 1"),
    "cifar without test batch": (_cifar_without("test_batch.bin"), "test_batch.bin missing"),
    "cifar without train batches": (_cifar_without(*[f"data_batch_{i}.bin" for i in range(1, 6)]),
                                    "data_batch_1.bin, data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, "
                                    "data_batch_5.bin missing"),
    "cifar missing one train batch": (_cifar_without("data_batch_3.bin"), "data_batch_3.bin missing"),
    "cifar-100 truncated": (lambda raw, tmp: _cifar100_bad(raw, tmp, size=3074 * 4 - 1),
                            "is not a multiple of the 3,074-byte cifar100 record"),
    "cifar-100 without test.bin": (lambda raw, tmp: _cifar100_bad(raw, tmp, files=("train.bin",)),
                                   "test.bin missing"),
    "cifar-100 bad fine label": (_cifar100_label, "record 1 has label 100; cifar100 labels are 0..99"),
    "oversized image": (_oversized(("--max-pixels", "1100"), 40, 40), "too large: 40x40 = 1,600 pixels"),
    "decompression bomb": (_oversized(("--max-pixels", "0"), 30000, 30000), "decompression bomb"),
    "all train images bad": (_all_train_bad, "the train split has no usable images"),
    "negative max pixels": (lambda raw, tmp: (raw / "cifar10", ("--max-pixels", "-1")),
                            "preprocess.max_pixels: must be >= 0"),
}


def assert_one_clear_error(proc, expected: str) -> None:
    assert proc.returncode != 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    assert expected in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_error_line_and_publishes_nothing(stack, bucket, raw, tmp_path, case):
    make, expected = BAD_INPUTS[case]
    source, extra = make(raw, tmp_path)
    proc = preprocess(stack, bucket, source, *extra, *OFFLINE, check=False)
    assert_one_clear_error(proc, expected)
    assert objects(stack, bucket, "") == {}


def test_missing_s3_source_is_one_error_line(stack, bucket):
    proc = preprocess(stack, bucket, f"s3://{bucket}/raw/does-not-exist", *OFFLINE, check=False)
    assert_one_clear_error(proc, "does not exist")
    assert objects(stack, bucket, "") == {}


# -- junk, oversized images, CIFAR-100 and train-only datasets ---------------------------------------------------


def test_junk_is_skipped_oversized_images_quarantined_and_sizes_recorded(stack, bucket, raw, tmp_path):
    source = copy_of(raw, "imagefolder", tmp_path)
    cls = source / "train" / digits.synset(1)
    junk = {".DS_Store": source / ".DS_Store", "Thumbs.db": source / "val" / "Thumbs.db",
            "desktop.ini": cls / "desktop.ini", "._x.JPEG": cls / "._x.JPEG", ".git/": source / ".git" / "HEAD"}
    for path in junk.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"junk")
    (cls / "huge.png").write_bytes(_png_header(40, 40))
    proc = preprocess(stack, bucket, source, "--max-pixels", "1100", "--max-bad-fraction", "0.01",
                      "--report-dir", str(tmp_path / "r"), *OFFLINE)
    assert "skipped 5 system junk files" in proc.stderr
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert sorted(report["skipped"]) == sorted([".DS_Store", ".git/", "val/Thumbs.db",
                                                f"train/{digits.synset(1)}/desktop.ini",
                                                f"train/{digits.synset(1)}/._x.JPEG"])
    (bad,) = report["quarantined"]
    assert bad["file"].endswith("huge.png") and bad["reason"].startswith("too large: 40x40")
    md, page = (tmp_path / "r" / "report.md").read_text(), (tmp_path / "r" / "report.html").read_text()
    assert "## Skipped files" in md and "._x.JPEG" in md and "too large" in md
    assert "Skipped files" in page and "desktop.ini" in page
    _, manifest = published(bucket)
    size = manifest.meta["splits"]["train"]["image_size"]
    assert (size["min_width"], size["max_width"], size["min_height"], size["max_height"]) == (32, 32, 32, 32)
    assert size["channels"] and manifest.meta["skipped_files"] == 5


def test_cifar100_and_train_only_cifar10_are_published(stack, bucket, raw, tmp_path):
    import numpy as np

    c100 = tmp_path / "c100" / "cifar-100-binary"
    c100.mkdir(parents=True)
    for name in ("train.bin", "test.bin"):
        rec = np.zeros((8, 3074), np.uint8)
        rec[:, 0], rec[:, 1] = np.arange(8) % 20, np.arange(8) * 11
        (c100 / name).write_bytes(rec.tobytes())
    (c100 / "fine_label_names.txt").write_text("".join(f"fine{i}\n" for i in range(100)))
    proc = preprocess(stack, bucket, c100.parent, *OFFLINE)
    assert "(cifar100)" in proc.stderr
    _, manifest = published(bucket)
    assert manifest.meta["num_classes"] == 100 and manifest.meta["classes"][11] == "fine11"
    assert manifest.meta["splits"]["train"]["per_class"]["fine77"] == 1
    c10 = copy_of(raw, "cifar10", tmp_path)
    (c10 / "test_batch.bin").unlink()
    proc = preprocess(stack, bucket, c10, "--train-only", *OFFLINE)
    assert "no val split (--train-only)" in proc.stderr
    metas = [Storage.connect().read_manifest(S3Uri(bucket, k.rsplit("/", 1)[0])).meta
             for k in objects(stack, bucket) if k.endswith(MANIFEST)]
    assert sorted(tuple(m["splits"]) for m in metas) == [("train",), ("train", "val")]


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
