"""CIFAR-10 binary layout: ``data_batch_1..5.bin`` (train) and ``test_batch.bin`` (val).

Each file is a run of 3,073-byte records: one label byte (0..9), then the red,
green and blue 32x32 planes. The files may sit in the source folder itself or
one level down (``cifar-10-batches-bin/``, and the recipes' split into
``cifar-10-batches-bin`` + ``cifar-10-verify-bin``). Class names come from
``batches.meta.txt`` when present.
"""

from __future__ import annotations

import re
from pathlib import Path

from mindzoo.data.sources import Item, Plan
from mindzoo.data.walk import entries
from mindzoo.errors import DataError

RECORD_BYTES = 3073
NUM_CLASSES = 10
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_BATCH = re.compile(r"(^|/)(data_batch_(\d+)|test_batch)\.bin$")
META = "batches.meta.txt"


def is_cifar_name(name: str) -> bool:
    return bool(_BATCH.search(name))


def _batch_files(root: Path) -> list[Path]:
    found = []
    for path, is_dir in entries(root, root):
        children = entries(path, root) if is_dir else [(path, False)]
        found.extend(p for p, d in children if not d and is_cifar_name(p.name))
    return found


def _order(path: Path) -> tuple[int, str]:
    match = _BATCH.search(path.name)
    number = match.group(3) if match else None
    return (int(number) if number else 0, path.as_posix())


def scan_cifar(root: Path) -> Plan:
    """Validate every record's label and list the records of each split."""
    files = _batch_files(root)
    train = sorted((p for p in files if p.name.startswith("data_batch_")), key=_order)
    val = sorted(p for p in files if p.name == "test_batch.bin")
    if not files:
        raise DataError(f"no CIFAR-10 batch files (data_batch_*.bin, test_batch.bin) in {root}")
    listing: list[tuple[str, int, int]] = []
    splits = {}
    for split, paths in (("train", train), ("val", val)):
        items = [item for path in paths for item in _records(path, root, listing)]
        if items:
            splits[split] = tuple(items)
    meta = next((p.parent / META for p in files if (p.parent / META).is_file()), None)
    if meta is not None:
        st = meta.stat()
        listing.append((meta.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    if not splits:
        raise DataError(f"empty dataset: the CIFAR-10 batch files in {root} hold no records")
    return Plan("cifar10", root, _class_names(meta), splits, tuple(listing))


def _records(path: Path, root: Path, listing: list[tuple[str, int, int]]) -> list[Item]:
    import numpy as np

    rel = path.relative_to(root).as_posix()
    st = path.stat()
    if st.st_size % RECORD_BYTES:
        raise DataError(f"{rel}: {st.st_size:,} bytes is not a multiple of the {RECORD_BYTES:,}-byte "
                        "CIFAR-10 record (truncated or not a CIFAR-10 binary)")
    listing.append((rel, st.st_size, st.st_mtime_ns))
    if st.st_size == 0:
        return []
    labels = np.fromfile(path, np.uint8).reshape(-1, RECORD_BYTES)[:, 0]
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise DataError(f"{rel}: record {int(bad[0])} has label {int(labels[bad[0]])}; CIFAR-10 labels are "
                        f"0..{NUM_CLASSES - 1} ({bad.size} bad records)")
    return [Item(f"{rel}:{i}", int(label), rel, i * RECORD_BYTES) for i, label in enumerate(labels.tolist())]


def _class_names(meta: Path | None) -> tuple[str, ...]:
    if meta is None:
        return CLASS_NAMES
    names = tuple(line.strip() for line in meta.read_text(errors="replace").splitlines() if line.strip())
    return names if len(names) == NUM_CLASSES else CLASS_NAMES
