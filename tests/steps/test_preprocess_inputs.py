"""`mindzoo preprocess` on awkward and bad inputs: every bad one is one error line with nothing published;
system junk is skipped, oversized images quarantined, CIFAR-100 and train-only CIFAR-10 published."""

from __future__ import annotations

import json

import pytest

from mindzoo.datasets import digits
from mindzoo.storage import MANIFEST, S3Uri, Storage
from test_preprocess import OFFLINE, copy_of, objects, preprocess, published, raw  # noqa: F401 - raw is a fixture

pytestmark = [pytest.mark.runtime, pytest.mark.stack]


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
