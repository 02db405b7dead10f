"""The bundled digits in real CIFAR-10 binary and ImageNet-folder layouts."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mindzoo.config import DigitsConfig
from mindzoo.datasets import digits
from mindzoo.errors import DataError

pytestmark = pytest.mark.runtime


def test_cifar10_layout_round_trips_every_pixel(tmp_path):
    out = tmp_path / "cifar"
    counts = digits.make(DigitsConfig(format="cifar10"), out)
    assert counts["train"] + counts["val"] == 1797
    names = sorted(p.name for p in out.iterdir())
    assert names == ["batches.meta.txt", *[f"data_batch_{i}.bin" for i in range(1, 6)], "test_batch.bin"]
    (train_x, train_y), (val_x, val_y) = digits.load(DigitsConfig())
    raw = b"".join((out / f"data_batch_{i}.bin").read_bytes() for i in range(1, 6))
    assert len(raw) % 3073 == 0 and len(raw) // 3073 == counts["train"]
    records = np.frombuffer(raw, np.uint8).reshape(-1, 3073)
    assert np.array_equal(records[:, 0], train_y)
    assert np.array_equal(records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), train_x)
    test = np.frombuffer((out / "test_batch.bin").read_bytes(), np.uint8).reshape(-1, 3073)
    assert np.array_equal(test[:, 0], val_y)


def test_imagefolder_layout_has_every_class_in_both_splits(tmp_path):
    out = tmp_path / "tree"
    counts = digits.make(DigitsConfig(format="imagefolder"), out)
    for split in ("train", "val"):
        classes = sorted(p.name for p in (out / split).iterdir())
        assert classes == [digits.synset(i) for i in range(10)]
        files = list((out / split).rglob("*.JPEG"))
        assert len(files) == counts[split]
    with Image.open(next((out / "val").rglob("*.JPEG"))) as img:
        assert img.format == "JPEG" and img.size == (32, 32) and img.mode == "RGB"


def test_split_is_stratified_and_seeded():
    (_, y1), (_, v1) = digits.load(DigitsConfig(seed=1))
    (_, y2), (_, v2) = digits.load(DigitsConfig(seed=1))
    assert np.array_equal(v1, v2)
    per_class = np.bincount(v1, minlength=10) / (np.bincount(v1, minlength=10) + np.bincount(y1, minlength=10))
    assert np.all(np.abs(per_class - 0.2) < 0.02)


def test_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "cifar"
    digits.make(DigitsConfig(), out)
    with pytest.raises(DataError, match="--force"):
        digits.make(DigitsConfig(), out)
    digits.make(DigitsConfig(), out, force=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_an_output_path_through_a_file_is_one_error_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "file").write_text("")
    proc = subprocess.run([str(Path(sys.executable).parent / "mindzoo"), "datasets", "make-digits",
                           str(tmp_path / "file" / "digits")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and proc.stderr.splitlines() == [f"error: File exists: {tmp_path / 'file'}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_class_subset_keeps_those_digits_with_the_same_split(tmp_path):
    (all_x, all_y), (all_vx, all_vy) = digits.load(DigitsConfig(format="imagefolder"))
    (x, y), (vx, vy) = digits.load(DigitsConfig(format="imagefolder", classes=(6, 7, 8, 9)))
    keep, vkeep = all_y >= 6, all_vy >= 6
    assert np.array_equal(y, all_y[keep]) and np.array_equal(x, all_x[keep]) and np.array_equal(vy, all_vy[vkeep])
    digits.make(DigitsConfig(format="imagefolder", classes=(6, 7, 8, 9)), tmp_path / "tree")
    assert sorted(p.name for p in (tmp_path / "tree" / "train").iterdir()) == [digits.synset(c) for c in (6, 7, 8, 9)]


@pytest.mark.parametrize("kwargs", [{"classes": (1,)}, {"format": "imagefolder", "classes": (3, 3)},
                                    {"format": "imagefolder", "classes": (10,)}])
def test_bad_class_subsets_name_the_key(kwargs):
    with pytest.raises(ValueError, match="^classes: "):
        DigitsConfig(**kwargs)
