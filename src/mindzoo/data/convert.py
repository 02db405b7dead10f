"""Parallel, sharded conversion of a scanned dataset to MindRecord files.

Each split is cut into shards and each shard is written by one worker process
as an independent MindRecord file (``FileWriter(shard_num=1)`` plus its
``.db`` index); ``MindDataset`` reads a list of such files as one dataset. The
shard plan depends only on the data and the settings, never on the worker
count, so the output — and therefore the content hash — is the same however
many workers wrote it. Train records are shuffled once at write time (seeded)
so every shard holds every class; val keeps the sorted class order.

Records hold the original encoded bytes (JPEG/PNG/BMP), except CIFAR-10
records, which become lossless PNGs, and images re-encoded smaller for
``store_size``. Images that fail the check are quarantined: left out of the
shards and returned with their reason for the report.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import shutil
import tempfile
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mindzoo.data import SCHEMA
from mindzoo.data.cifar import PIXEL_BYTES
from mindzoo.data.images import BadImage, ImageInfo, inspect, png_from_planes, shrink
from mindzoo.data.sources import Item, Plan

MIN_SHARDS = 8  # small datasets still convert in parallel and split across up to 8 readers
MIN_SHARD_ROWS = 64
WRITE_BATCH = 256  # rows per write_raw_data call


@dataclass(frozen=True)
class ConvertSettings:
    verify: str = "header"
    store_size: int = 0
    store_quality: int = 90
    shard_size: int = 2048
    num_shards: int = 0
    seed: int = 0
    max_pixels: int = 0  # 0: no limit


@dataclass(frozen=True)
class ShardTask:
    split: str
    index: int
    total: int
    root: str
    out_dir: str
    items: tuple[Item, ...]
    settings: ConvertSettings

    @property
    def name(self) -> str:
        return f"{self.split}/{self.split}-{self.index:05d}-of-{self.total:05d}.mindrecord"


@dataclass
class ShardResult:
    """What one worker wrote, with per-record statistics for the report."""

    split: str
    index: int
    file: str  # relative to the output folder; "" if every image was bad
    rows: int = 0
    bytes: int = 0  # shard file size (sha256s are taken while uploading: see Storage.publish)
    # Per-record statistics as compact arrays: the parent holds them for every image of the dataset.
    labels: array = field(default_factory=lambda: array("i"))
    widths: array = field(default_factory=lambda: array("i"))
    heights: array = field(default_factory=lambda: array("i"))
    sizes: array = field(default_factory=lambda: array("q"))  # encoded bytes as stored
    modes: Counter = field(default_factory=Counter)
    formats: Counter = field(default_factory=Counter)
    resized: int = 0
    bad: list[tuple[str, int, str]] = field(default_factory=list)  # (file id, label, reason)


@dataclass
class Conversion:
    shards: list[ShardResult]
    seconds: float
    workers: int

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    @property
    def bad(self) -> list[tuple[str, str, int, str]]:
        return [(s.split, *b) for s in self.shards for b in s.bad]


def shard_count(n: int, shard_size: int, num_shards: int) -> int:
    if n == 0:
        return 0
    if num_shards:
        return min(num_shards, n)
    return max(math.ceil(n / shard_size), min(MIN_SHARDS, math.ceil(n / MIN_SHARD_ROWS)))


def plan_shards(plan: Plan, out_dir: Path, settings: ConvertSettings) -> list[ShardTask]:
    import numpy as np

    tasks = []
    for split, items in plan.splits.items():
        order = np.random.default_rng(settings.seed).permutation(len(items)) if split == "train" else None
        ordered = [items[i] for i in order] if order is not None else list(items)
        total = shard_count(len(ordered), settings.shard_size, settings.num_shards)
        for index, part in enumerate(np.array_split(np.arange(len(ordered)), total)):
            chunk = tuple(ordered[int(i)] for i in part)
            tasks.append(ShardTask(split, index, total, str(plan.root), str(out_dir), chunk, settings))
    return tasks


def convert(plan: Plan, out_dir: Path, settings: ConvertSettings, workers: int, progress: bool = False) -> Conversion:
    """Write every split of ``plan`` under ``out_dir``; the largest shards start first."""
    from tqdm import tqdm

    import mindspore.mindrecord  # noqa: F401 - imported once here, inherited by the forked workers

    tasks = sorted(plan_shards(plan, out_dir, settings), key=lambda t: -len(t.items))
    for split in plan.splits:
        (out_dir / split).mkdir(parents=True, exist_ok=True)
    workers = max(1, min(workers, len(tasks)))
    started = time.monotonic()
    results = []
    pool = mp.get_context("fork").Pool(workers) if workers > 1 else None  # before tqdm starts its thread
    try:
        mapped = pool.imap_unordered(convert_shard, tasks) if pool else map(convert_shard, tasks)
        with tqdm(total=plan.total, unit="img", desc="convert", disable=not progress, leave=False) as bar:
            for result in mapped:
                results.append(result)
                bar.update(result.rows + len(result.bad))
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    results.sort(key=lambda r: (r.split, r.index))
    return Conversion(results, time.monotonic() - started, workers)


def convert_shard(task: ShardTask) -> ShardResult:
    """Worker: check, (shrink,) and write one shard's images."""
    from mindspore.mindrecord import FileWriter

    out = Path(task.out_dir) / task.name
    result = ShardResult(task.split, task.index, task.name)
    reader = _Reader(Path(task.root))
    rows = [row for item in task.items if (row := _record(item, reader, task.settings, result)) is not None]
    if not rows:  # every image was bad: leave no empty shard behind
        result.file = ""
        return result
    writer = FileWriter(str(out), shard_num=1, overwrite=True)
    page, header = page_layout([len(r["image"]) for r in rows])
    writer.set_page_size(page)
    writer.set_header_size(header)
    writer.add_schema(dict(SCHEMA), "mindzoo_image")
    writer.add_index(["label", "file_id"])
    for start in range(0, len(rows), WRITE_BATCH):
        writer.write_raw_data(rows[start:start + WRITE_BATCH])
    _commit(writer, out)
    result.bytes = out.stat().st_size
    return result


def _commit(writer: Any, out: Path) -> None:
    """Commit the shard, building its sqlite index on tmpfs when there is one.

    MindSpore's index writer commits sqlite synchronously (16 fdatasyncs per
    shard), which on a disk costs more than writing a small shard. The staging
    folder is disposable — a crash means a rerun — so that durability buys
    nothing: the index is built through a symlink in /dev/shm (the recorded
    shard name is the same basename) and moved next to the shard. Without a
    usable /dev/shm, or if MindSpore's writer changes, it commits normally.
    """
    from mindspore.mindrecord.core.shardindexgenerator import ShardIndexGenerator

    shm = Path("/dev/shm")
    if not (hasattr(writer, "_index_generator") and shm.is_dir() and os.access(shm, os.W_OK)):
        writer.commit()
        return
    writer._index_generator = False  # noqa: SLF001 - see the docstring; the index is built below
    writer.commit()
    with tempfile.TemporaryDirectory(dir=shm, prefix="mindzoo-index-") as tmp:
        link = Path(tmp) / out.name
        link.symlink_to(out.absolute())
        generator = ShardIndexGenerator(str(link), False)
        generator.build()
        generator.write_to_db()
        shutil.move(f"{link}.db", f"{out}.db")


def page_layout(sizes: list[int]) -> tuple[int, int]:
    """(page size, header size) that keep a shard's padding small.

    MindRecord pads every page to the page size (the unused tail of each blob
    page, a whole page for the small label/file-id columns), and that padding
    is uploaded like data. About sqrt(2 * rows) pages minimises it (~3% at
    2,048 ImageNet-sized images); the header must list every page.
    """
    total, largest = sum(sizes), max(sizes)
    pages = max(1.0, math.sqrt(2 * len(sizes)))
    page = _pow2(max(total / pages, 2 * largest + 4096, 1 << 15))
    count = total // page + 3
    header = _pow2(max(1 << 16, (1 << 14) + 512 * count))
    return min(page, 1 << 28), min(header, 1 << 27)


def _pow2(n: float) -> int:
    return 1 << max(0, math.ceil(math.log2(n)))


def _record(item: Item, reader: _Reader, settings: ConvertSettings, result: ShardResult) -> dict[str, Any] | None:
    try:
        if item.offset >= 0:
            data = png_from_planes(reader.record(item))
            info = ImageInfo(32, 32, "RGB", "PNG", False)
        else:
            data = reader.file(item)
            info = inspect(data, settings.verify, settings.max_pixels)
            if settings.store_size:
                data, info = shrink(data, info, settings.store_size, settings.store_quality)
    except BadImage as err:
        result.bad.append((item.file_id, item.label, str(err)))
        return None
    except OSError as err:
        result.bad.append((item.file_id, item.label, f"cannot read: {err.strerror or err}"))
        return None
    result.rows += 1
    result.labels.append(item.label)
    result.widths.append(info.width)
    result.heights.append(info.height)
    result.sizes.append(len(data))
    result.modes[info.mode] += 1
    result.formats[info.format] += 1
    result.resized += info.resized
    return {"image": data, "label": item.label, "file_id": item.file_id}


class _Reader:
    """Reads image files, and CIFAR records' pixels through a shared memory map per batch file."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._maps: dict[str, Any] = {}

    def file(self, item: Item) -> bytes:
        with open(self.root / item.path, "rb") as fh:
            return fh.read()

    def record(self, item: Item) -> bytes:
        import numpy as np

        if item.path not in self._maps:
            self._maps[item.path] = np.memmap(self.root / item.path, np.uint8, mode="r")
        return self._maps[item.path][item.offset:item.offset + PIXEL_BYTES].tobytes()
