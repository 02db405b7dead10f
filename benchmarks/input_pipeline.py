"""Benchmark: training input from MindRecord shards vs ImageFolderDataset over the same JPEGs.

Both pipelines apply the same recipe's train transforms (default resnet50_bam:
RandomCropDecodeResize 224 → flip → colour jitter → normalise → HWC2CHW),
batch the same way and use the same number of parallel workers. JPEG decoding
dominates both, so reading MindRecord instead of files alone gains little
(printed as ``mindrecord_default``). The idea measured as the main ratio is
FFCV's: ``--store-size`` re-encodes images at preprocess time to a bounded
short side (default 256, the recipes' eval resize), so each training decode
touches far fewer pixels. The preprocess default (``store_size 0``) keeps the
original bytes and therefore the recipes' exact input; a stored short side of
256 is what eval resizes to anyway, but random crops then start from fewer
pixels (FFCV reports a small accuracy effect at this resolution).

Why the default ratio stays near 1: every ImageNet recipe's first train op already is
MindSpore's fused RandomCropDecodeResize (the ModelZoo's dataset.py files use it too, so the
baseline reader gets it as well), and that decode is nearly all of the CPU time on both
sides; the reader's own cost (files vs shards) is a few percent. Only fewer pixels per
decode (``--store-size``) moves the ratio, and that changes what a crop sees. The run prints
each data config's first train op.

    .venv/bin/python benchmarks/input_pipeline.py --images 600
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import imagenet_like  # noqa: E402 - the sibling helper, not a package


def imagefolder(root: Path, cfg, batch: int, workers: int):
    import mindspore.dataset as ds

    from mindzoo.data import transforms

    data = ds.ImageFolderDataset(str(root / "train"), shuffle=True, decode=False, num_parallel_workers=workers)
    data = data.map(operations=transforms.train_ops(cfg), input_columns="image", num_parallel_workers=workers)
    return data.batch(batch, drop_remainder=True)


def mindrecord(folder: Path, cfg, batch: int, workers: int):
    from mindzoo.data.pipeline import create_dataset

    return create_dataset(folder, "train", cfg, batch, train=True, seed=0, num_parallel_workers=workers)


def epoch(data) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process's threads, images) of one pass."""
    wall, cpu, images = time.perf_counter(), time.process_time(), 0
    for columns in data.create_tuple_iterator(output_numpy=True, num_epochs=1):
        images += columns[0].shape[0]
    return time.perf_counter() - wall, time.process_time() - cpu, images


def measure(root: Path, scratch: Path, cfg, args: argparse.Namespace) -> dict[str, list[tuple[float, float]]]:
    """(images/s, images per CPU-second) of each pipeline over ``args.repeat`` interleaved epochs."""
    from mindzoo.config import PreprocessConfig
    from mindzoo.data.prepare import convert_local

    for store in (0, args.store_size):
        convert_local(PreprocessConfig(source=str(root), store_size=store, workers=args.workers),
                      scratch / f"store-{store}")
    contenders = {
        "imagefolder": lambda: imagefolder(root, cfg, args.batch_size, args.workers),
        "mindrecord_default": lambda: mindrecord(scratch / "store-0", cfg, args.batch_size, args.workers),
        "mindrecord": lambda: mindrecord(scratch / f"store-{args.store_size}", cfg, args.batch_size, args.workers),
    }
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for _ in range(args.repeat):
        for name, build in contenders.items():
            wall, cpu, images = epoch(build())
            rates[name].append((images / wall, images / cpu))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000, help="generated JPEGs (cached)")
    parser.add_argument("--data-config", default="resnet50_bam", help="whose train transforms to apply")
    parser.add_argument("--store-size", type=int, default=256, help="short side stored by preprocess")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--repeat", type=int, default=5, help="interleaved epochs per pipeline; median reported")
    args = parser.parse_args()

    from mindzoo.archs import get_data_config

    cfg = get_data_config(args.data_config)
    root = imagenet_like.make(args.images)
    for path in imagenet_like.files(root):
        path.read_bytes()  # page cache, for every contender
    scratch = Path(tempfile.mkdtemp(prefix="mindzoo-bench-"))
    try:
        rates = measure(root, scratch, cfg, args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report(rates, cfg, args)


def train_paths() -> list[str]:
    """How each recipe's training input decodes (the same ops on either reader)."""
    from mindzoo.archs import DATA_CONFIGS
    from mindzoo.data import transforms

    lines = []
    for name, cfg in sorted(DATA_CONFIGS.items()):
        first = type(transforms.train_ops(cfg)[0]).__name__
        how = "fused: decodes only the crop's rows and blocks" if first == "RandomCropDecodeResize" else \
            "whole-image decode of 32x32 lossless PNGs, then the recipe's padded crop"
        lines.append(f"  {name:20s} {first} ({how})")
    return lines


def report(rates: dict[str, list[tuple[float, float]]], cfg, args: argparse.Namespace) -> None:
    wall = {name: statistics.median(r for r, _ in values) for name, values in rates.items()}
    cpu = {name: statistics.median(c for _, c in values) for name, values in rates.items()}
    print(f"{args.images} JPEGs, {cfg.name} train transforms at {cfg.input_size}, batch {args.batch_size}, "
          f"{args.workers} workers, median of {args.repeat} interleaved epochs")
    labels = {"imagefolder": "ImageFolderDataset (original JPEGs)",
              "mindrecord_default": "MindRecord, store_size 0 (original bytes)",
              "mindrecord": f"MindRecord, store_size {args.store_size}"}
    print("train input path per data config:", *train_paths(), sep="\n")
    for name, label in labels.items():
        epochs = ", ".join(f"{r:.0f}" for r, _ in rates[name])
        print(f"{label:45s} {wall[name]:6.0f} img/s ({epochs})  {cpu[name]:6.0f} img per CPU-second")
    # Wall-clock rates swing with other load on a shared machine; CPU cost per image does not, and a
    # CPU-bound pipeline's rate on an idle machine is proportional to it.
    print(f"ratio mindrecord_default_vs_imagefolder {wall['mindrecord_default'] / wall['imagefolder']:.2f}")
    print(f"ratio mindrecord_vs_imagefolder_cpu {cpu['mindrecord'] / cpu['imagefolder']:.2f}")
    print(f"ratio mindrecord_vs_imagefolder {wall['mindrecord'] / wall['imagefolder']:.2f}")


if __name__ == "__main__":
    main()
