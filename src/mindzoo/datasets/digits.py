"""scikit-learn's handwritten digits (1,797 real 8x8 images) in real dataset layouts.

The digits ship inside scikit-learn, so demos and tests need no download; the
writers below produce the exact on-disk formats users bring at full scale:

- ``cifar10``: ``data_batch_1..5.bin`` + ``test_batch.bin``, 3,073-byte records
  (label byte, then the red, green and blue 32x32 planes), plus ``batches.meta.txt``;
- ``imagefolder``: ``train/<synset>/*.JPEG`` and ``val/<synset>/*.JPEG``.

Grey digits become RGB by repeating the channel; 0..16 intensities scale to 0..255.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mindzoo.config import DigitsConfig
from mindzoo.errors import DataError

CLASS_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CIFAR_TRAIN_BATCHES = 5


def synset(label: int) -> str:
    """ImageNet-style folder name; sorted order equals label order."""
    return f"n{label:08d}"


def load(cfg: DigitsConfig) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(train images, labels), (val images, labels); images uint8 N x size x size x 3."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    grey = np.clip(digits.images * (255.0 / 16.0), 0, 255).astype(np.uint8)
    images = np.stack([
        np.asarray(Image.fromarray(img).resize((cfg.size, cfg.size), Image.BILINEAR).convert("RGB"))
        for img in grey
    ])
    labels = digits.target.astype(np.int64)
    rng = np.random.default_rng(cfg.seed)
    val_idx = []
    for label in range(10):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        val_idx.extend(idx[: round(len(idx) * cfg.val_fraction)])
    is_val = np.zeros(len(labels), dtype=bool)
    is_val[val_idx] = True
    keep = np.isin(labels, cfg.classes) if cfg.classes else np.ones(len(labels), dtype=bool)
    return (images[~is_val & keep], labels[~is_val & keep]), (images[is_val & keep], labels[is_val & keep])


def cifar_records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """CIFAR-10 binary records: label byte + channel-planar 32x32x3 pixels."""
    planar = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return np.concatenate([labels.astype(np.uint8)[:, None], planar], axis=1).tobytes()


def _write_cifar10(out: Path, train: tuple, val: tuple) -> None:
    images, labels = train
    for i, chunk in enumerate(np.array_split(np.arange(len(labels)), CIFAR_TRAIN_BATCHES), start=1):
        (out / f"data_batch_{i}.bin").write_bytes(cifar_records(images[chunk], labels[chunk]))
    (out / "test_batch.bin").write_bytes(cifar_records(*val))
    (out / "batches.meta.txt").write_text("\n".join(CLASS_NAMES) + "\n")


def _write_imagefolder(out: Path, train: tuple, val: tuple) -> None:
    from PIL import Image

    for split, (images, labels) in (("train", train), ("val", val)):
        for i, (img, label) in enumerate(zip(images, labels)):
            folder = out / split / synset(int(label))
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"digit_{split}_{i:05d}.JPEG", quality=95)


WRITERS: dict[str, Callable[[Path, tuple, tuple], None]] = {
    "cifar10": _write_cifar10,
    "imagefolder": _write_imagefolder,
}


def make(cfg: DigitsConfig, out: Path, force: bool = False) -> dict[str, int]:
    """Write the digits to ``out`` in ``cfg.format``; the folder appears only when complete."""
    if out.exists() and any(out.iterdir()) and not force:
        raise DataError(f"{out} exists and is not empty; pass --force to replace it")
    train, val = load(cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        WRITERS[cfg.format](staging, train, val)
        staging.chmod(0o755)  # mkdtemp makes it private; the dataset is not
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"train": len(train[1]), "val": len(val[1])}
