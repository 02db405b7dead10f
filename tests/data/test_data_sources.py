"""Source layouts: detection, class numbering, label files, and the errors raised before any conversion."""

from __future__ import annotations

import json
import shutil

import pytest

from mindzoo.config import DigitsConfig
from mindzoo.data import hashing, labels, manifest, sources
from mindzoo.data.cifar import CLASS_NAMES as CIFAR_NAMES
from mindzoo.datasets import digits
from mindzoo.errors import DataError

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw")
    for fmt in ("cifar10", "imagefolder"):
        digits.make(DigitsConfig(format=fmt), root / fmt)
    return root


def test_detects_each_layout_from_names():
    assert sources.detect_format(["cifar-10-batches-bin", "cifar-10-batches-bin/data_batch_1.bin"]) == "cifar10"
    assert sources.detect_format(["train", "train/n01", "val", "val/n01"]) == "imagefolder"
    assert sources.detect_format(["validation_preprocess/x.JPEG"]) == "imagefolder"
    assert sources.detect_format(["a.JPEG", "imagenet_label.json"]) == "flat"
    assert sources.detect_format(["readme.txt"]) is None


def test_imagefolder_classes_follow_sorted_folder_order(raw, tmp_path):
    src = tmp_path / "tree"
    shutil.copytree(raw / "imagefolder", src)
    (src / "train" / digits.synset(0)).rename(src / "train" / "zzz")  # sorted last now
    (src / "val" / digits.synset(0)).rename(src / "val" / "zzz")
    plan = sources.scan(src)
    assert plan.format == "imagefolder" and plan.classes[-1] == "zzz" and plan.classes[0] == digits.synset(1)
    assert all(item.label == plan.classes.index(item.file_id.split("/")[1]) for item in plan.splits["val"])
    assert len(plan.listing) == plan.total == 1797


def test_cifar_records_names_and_nested_recipe_layout(raw, tmp_path):
    plan = sources.scan(raw / "cifar10")
    assert plan.classes == digits.CLASS_NAMES  # from batches.meta.txt
    assert plan.splits["train"][0].file_id == "data_batch_1.bin:0" and plan.splits["val"][3].offset == 3 * 3073 + 1
    nested = tmp_path / "cifar"
    (nested / "cifar-10-batches-bin").mkdir(parents=True)
    (nested / "cifar-10-verify-bin").mkdir()
    for path in (raw / "cifar10").glob("data_batch_*.bin"):
        shutil.copy(path, nested / "cifar-10-batches-bin")
    shutil.copy(raw / "cifar10" / "test_batch.bin", nested / "cifar-10-verify-bin")
    plan = sources.scan(nested)
    assert plan.classes == CIFAR_NAMES  # no meta file: the standard names
    assert {k: len(v) for k, v in plan.splits.items()} == {"train": 1438, "val": 359}


def test_label_files_in_both_formats(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"x_1.JPEG": 3, "x_2.JPEG": 0}))
    (tmp_path / "b.txt").write_text("x_1:3\n\nx_2:0\n")
    for name in ("a.json", "b.txt"):
        table = labels.parse(tmp_path / name)
        assert labels.lookup(table, "x_1.JPEG") == 3 and labels.lookup(table, "x_2.JPEG") == 0
        assert labels.lookup(table, "x_3.JPEG") is None
    (tmp_path / "c.txt").write_text("x_1 3\n")
    with pytest.raises(DataError, match=r"c.txt:1: expected `<image stem>:<class index>`"):
        labels.parse(tmp_path / "c.txt")
    (tmp_path / "d.json").write_text('{"x": "cat"}')
    with pytest.raises(DataError, match="expected an integer class index"):
        labels.parse(tmp_path / "d.json")


def test_flat_folder_takes_labels_from_the_label_file(raw, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    expected = {}
    for path in sorted((raw / "imagefolder" / "val").rglob("*.JPEG")):
        shutil.copy(path, flat / path.name)
        expected[path.name] = int(path.parent.name[1:])
    (flat / "imagenet_label.json").write_text(json.dumps(expected))  # found next to the images
    plan = sources.scan(flat)
    assert plan.format == "flat" and list(plan.splits) == ["val"] and len(plan.classes) == 10
    assert {item.path: item.label for item in plan.splits["val"]} == expected
    (flat / "imagenet_label.json").write_text(json.dumps({**expected, next(iter(expected)): 10}))
    assert sources.scan(flat).classes[-1] == "10"  # classes come from the labels when no train/ names them


def test_flat_val_labels_must_index_train_classes(raw, tmp_path):
    src = tmp_path / "tree"
    shutil.copytree(raw / "imagefolder", src)
    found = {}
    for path in list((src / "val").rglob("*.JPEG")):
        path.rename(src / "val" / path.name)
        found[path.name] = 10
    for folder in [p for p in (src / "val").iterdir() if p.is_dir()]:
        folder.rmdir()
    (tmp_path / "labels.json").write_text(json.dumps(found))
    with pytest.raises(DataError, match=r"has label 10, expected 0..9 \(10 train classes\)"):
        sources.scan(src, "imagefolder", tmp_path / "labels.json")
    (tmp_path / "labels.json").write_text(json.dumps(dict(list(found.items())[1:])))
    with pytest.raises(DataError, match="1 images in val/ have no label in labels.json"):
        sources.scan(src, "imagefolder", tmp_path / "labels.json")


def test_self_referencing_symlink_and_stray_files(raw, tmp_path):
    src = tmp_path / "tree"
    shutil.copytree(raw / "imagefolder", src)
    (src / "train" / digits.synset(0) / "me").symlink_to("me")
    with pytest.raises(DataError, match="symlink loop at train/n00000000/me"):
        sources.scan(src)
    (src / "train" / digits.synset(0) / "me").unlink()
    (src / "train" / "stray.JPEG").write_bytes(b"x")
    with pytest.raises(DataError, match="train/stray.JPEG is not inside a class folder"):
        sources.scan(src)


def test_listing_digest_changes_with_content_not_with_order():
    a = hashing.listing_digest([("a", 1, 5), ("b", 2, 6)])
    assert a == hashing.listing_digest([("b", 2, 6), ("a", 1, 5)])
    assert a != hashing.listing_digest([("a", 1, 5), ("b", 3, 6)])
    base = dict(fmt="cifar10", shard_size=2048, num_shards=0, verify="decode", store_size=0, store_quality=90,
                seed=0, label_file_sha256="", max_pixels=1000, labels="")
    assert hashing.settings(**base) == hashing.settings(**{**base, "store_quality": 50})  # unused without resizing
    for change in ({"store_size": 256}, {"max_pixels": 0}, {"labels": "coarse"}):
        assert hashing.content_hash(a, hashing.settings(**base)) != hashing.content_hash(
            a, hashing.settings(**{**base, **change}))


def test_system_junk_is_skipped_and_listed_other_files_are_not(raw, tmp_path):
    src = tmp_path / "tree"
    shutil.copytree(raw / "imagefolder", src)
    cls = src / "train" / digits.synset(0)
    junk = [src / ".DS_Store", src / "train" / "Thumbs.db", cls / "._0001.JPEG", cls / "desktop.ini",
            src / "val" / ".hidden" / "x.JPEG"]
    for path in junk:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"junk")
    plan = sources.scan(src)
    assert plan.total == 1797 and all(not it.path.startswith(".") for it in plan.splits["val"])
    assert set(plan.skipped) == {".DS_Store", "train/Thumbs.db", f"train/{digits.synset(0)}/._0001.JPEG",
                                 f"train/{digits.synset(0)}/desktop.ini", "val/.hidden/"}
    assert sources.scan(src).listing == sources.scan(raw / "imagefolder").listing  # junk leaves the hash alone


def _cifar100(folder, records=6, meta=True):
    import numpy as np

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("train.bin", "test.bin"):
        rec = rng.integers(0, 256, (records, 3074), dtype=np.uint8)
        rec[:, 0], rec[:, 1] = np.arange(records) % 20, np.arange(records) * 7 % 100
        (folder / name).write_bytes(rec.tobytes())
    if meta:
        (folder / "fine_label_names.txt").write_text("".join(f"fine{i}\n" for i in range(100)))
        (folder / "coarse_label_names.txt").write_text("".join(f"coarse{i}\n" for i in range(20)))


def test_cifar100_binary_layout_fine_by_default_or_coarse(tmp_path):
    _cifar100(tmp_path / "c" / "cifar-100-binary")
    plan = sources.scan(tmp_path / "c")
    assert plan.format == "cifar100" and len(plan.classes) == 100 and plan.classes[7] == "fine7"
    assert [it.label for it in plan.splits["train"]] == [0, 7, 14, 21, 28, 35]
    assert plan.splits["val"][2].offset == 2 * 3074 + 2  # pixels start after the two label bytes
    coarse = sources.scan(tmp_path / "c", cifar100_labels="coarse")
    assert coarse.classes[3] == "coarse3" and [it.label for it in coarse.splits["train"]] == [0, 1, 2, 3, 4, 5]


def test_train_only_cifar_needs_the_flag(raw, tmp_path):
    src = tmp_path / "c"
    shutil.copytree(raw / "cifar10", src)
    (src / "test_batch.bin").unlink()
    with pytest.raises(DataError, match="test_batch.bin missing .*pass --train-only"):
        sources.scan(src)
    assert list(sources.scan(src, train_only=True).splits) == ["train"]
    with pytest.raises(DataError, match=r"dataset d has no 'val' split \(it was published without a validation "
                                        r"split, --train-only\) \(it has train\)"):
        manifest.shard_paths(tmp_path, {"name": "d", "splits": {"train": {"shards": []}}}, "val")
