"""CIFAR binary layouts: CIFAR-10 and CIFAR-100.

- CIFAR-10: ``data_batch_1..5.bin`` (train) and ``test_batch.bin`` (val), runs
  of 3,073-byte records: one label byte (0..9), then the red, green and blue
  32x32 planes. Class names come from ``batches.meta.txt`` when present.
- CIFAR-100: ``train.bin`` and ``test.bin``, 3,074-byte records: a coarse
  label byte (0..19), a fine label byte (0..99), then the same planes. Fine
  labels by default (100 classes, named by ``fine_label_names.txt``); coarse
  ones on request (``coarse_label_names.txt``).

The files may sit in the source folder itself or one level down
(``cifar-10-batches-bin/``, the recipes' ``cifar-10-batches-bin`` +
``cifar-10-verify-bin``, ``cifar-100-binary/``). A folder missing a split is
refused with the missing file named, unless a train-only dataset was asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mindzoo.data.sources import Item, Plan
from mindzoo.data.walk import entries
from mindzoo.errors import DataError

PIXEL_BYTES = 3 * 32 * 32
RECORD_BYTES = 1 + PIXEL_BYTES  # CIFAR-10
NUM_CLASSES = 10
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_BATCH = re.compile(r"(^|/)(data_batch_(\d+)|test_batch)\.bin$")
_CIFAR100 = re.compile(r"(^|/)(train|test)\.bin$")
META = "batches.meta.txt"


@dataclass(frozen=True)
class Layout:
    format: str
    record_bytes: int
    label_byte: int  # which of the leading label bytes is the label
    num_classes: int
    meta: str  # the class-names file
    default_names: tuple[str, ...]


CIFAR10 = Layout("cifar10", RECORD_BYTES, 0, NUM_CLASSES, META, CLASS_NAMES)
CIFAR100_FINE = Layout("cifar100", 2 + PIXEL_BYTES, 1, 100, "fine_label_names.txt",
                       tuple(str(i) for i in range(100)))
CIFAR100_COARSE = Layout("cifar100", 2 + PIXEL_BYTES, 0, 20, "coarse_label_names.txt",
                         tuple(str(i) for i in range(20)))


def is_cifar_name(name: str) -> bool:
    return bool(_BATCH.search(name))


def is_cifar100_name(name: str) -> bool:
    return bool(_CIFAR100.search(name))


def _files(root: Path, match: object) -> list[Path]:
    found = []
    for path, is_dir in entries(root, root):
        children = entries(path, root) if is_dir else [(path, False)]
        found.extend(p for p, d in children if not d and match(p.name))  # type: ignore[operator]
    return found


def _order(path: Path) -> tuple[int, str]:
    match = _BATCH.search(path.name)
    number = match.group(3) if match else None
    return (int(number) if number else 0, path.as_posix())


def scan_cifar(root: Path, train_only: bool = False) -> Plan:
    """CIFAR-10: every record's label validated, every split required (val unless ``train_only``)."""
    files = _files(root, is_cifar_name)
    if not files:
        raise DataError(f"no CIFAR-10 batch files (data_batch_*.bin, test_batch.bin) in {root}")
    train = sorted((p for p in files if p.name.startswith("data_batch_")), key=_order)
    val = sorted(p for p in files if p.name == "test_batch.bin")
    missing = [n for n in TRAIN_BATCHES if n not in {p.name for p in train}]
    if missing:
        raise DataError(f"incomplete CIFAR-10 folder {root}: {', '.join(missing)} missing "
                        f"(the train split is {', '.join(TRAIN_BATCHES)})")
    return _plan(root, CIFAR10, train, val, train_only, "test_batch.bin")


def scan_cifar100(root: Path, train_only: bool = False, labels: str = "fine") -> Plan:
    """CIFAR-100 (``train.bin`` + ``test.bin``), fine or coarse labels."""
    files = _files(root, is_cifar100_name)
    layout = CIFAR100_FINE if labels == "fine" else CIFAR100_COARSE
    train = [p for p in files if p.name == "train.bin"]
    if not train:
        raise DataError(f"incomplete CIFAR-100 folder {root}: train.bin missing")
    return _plan(root, layout, train, [p for p in files if p.name == "test.bin"], train_only, "test.bin")


def _plan(root: Path, layout: Layout, train: list[Path], val: list[Path], train_only: bool, val_name: str) -> Plan:
    if not val and not train_only:
        raise DataError(f"incomplete {layout.format.upper().replace('CIFAR', 'CIFAR-')} folder {root}: {val_name} "
                        "missing (the val split); pass --train-only to publish a dataset without validation")
    listing: list[tuple[str, int, int]] = []
    splits = {}
    for split, paths in (("train", train), ("val", val)):
        items = [item for path in paths for item in _records(path, root, layout, listing)]
        if items or split == "train":
            splits[split] = tuple(items)
    if not splits["train"]:
        raise DataError(f"empty dataset: the {layout.format} train files in {root} hold no records")
    meta = next((p.parent / layout.meta for p in train + val if (p.parent / layout.meta).is_file()), None)
    if meta is not None:
        st = meta.stat()
        listing.append((meta.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    return Plan(layout.format, root, _class_names(meta, layout), splits, tuple(listing))


def _records(path: Path, root: Path, layout: Layout, listing: list[tuple[str, int, int]]) -> list[Item]:
    import numpy as np

    rel = path.relative_to(root).as_posix()
    st = path.stat()
    size = layout.record_bytes
    if st.st_size % size:
        raise DataError(f"{rel}: {st.st_size:,} bytes is not a multiple of the {size:,}-byte "
                        f"{layout.format} record (truncated or not a {layout.format} binary)")
    listing.append((rel, st.st_size, st.st_mtime_ns))
    if st.st_size == 0:
        return []
    labels = np.fromfile(path, np.uint8).reshape(-1, size)[:, layout.label_byte]
    bad = np.flatnonzero(labels >= layout.num_classes)
    if bad.size:
        raise DataError(f"{rel}: record {int(bad[0])} has label {int(labels[bad[0]])}; {layout.format} labels are "
                        f"0..{layout.num_classes - 1} ({bad.size} bad records)")
    pixels = size - PIXEL_BYTES  # the offset recorded is that of the record's pixels
    return [Item(f"{rel}:{i}", int(label), rel, i * size + pixels) for i, label in enumerate(labels.tolist())]


def _class_names(meta: Path | None, layout: Layout) -> tuple[str, ...]:
    if meta is None:
        return layout.default_names
    names = tuple(line.strip() for line in meta.read_text(errors="replace").splitlines() if line.strip())
    return names if len(names) == layout.num_classes else layout.default_names
