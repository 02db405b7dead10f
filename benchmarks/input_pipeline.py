"""Benchmark: mindzoo's training input vs MindSpore's own reader with the recipe's own transforms.

The baseline is what the ModelZoo recipes run: ``ImageFolderDataset`` over the JPEGs, mapped per
image through the recipe's train ops (default resnet50_bam: RandomCropDecodeResize 224 → flip →
RandomColorAdjust → Normalize → HWC2CHW). mindzoo reads its MindRecord shards with
:func:`mindzoo.data.pipeline.create_dataset`, which builds each batch in one call
(:mod:`mindzoo.data.trainbatch`):

- the same crop boxes (MindSpore's sampling), decoded by the system's libjpeg-turbo, which decodes
  only the box and is about 1.5x faster than the decoder MindSpore bundles, to the same pixels;
- MindSpore's own Resize, and the flip;
- the colour jitter is drawn per image (same distributions as RandomColorAdjust) but applied, with
  the normalisation, by the engine on the device, beside the training step (the engines'
  ``input_stage``); batches leave the CPU as uint8.

Same batch size, same worker count on both sides. ``mindrecord_default`` reads the default store
(``store_size 0``: the original JPEG bytes, the recipes' exact input); ``mindrecord`` reads images
re-encoded at preprocess time to a bounded short side (``--store-size``, FFCV's idea: fewer pixels
per decode, which changes what a crop sees). The run prints the decoder in use, each data config's
path, and what the device stage would cost if it ran on this CPU instead.

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
    """How each recipe's training input is built (:func:`mindzoo.data.transforms.train_batch`)."""
    from mindzoo.archs import DATA_CONFIGS
    from mindzoo.data import cropdecode, transforms

    lines = []
    for name, cfg in sorted(DATA_CONFIGS.items()):
        if transforms.train_batch(cfg, None, 0) is not None:
            jitter = "colour jitter drawn, applied on the device" if cfg.train.color_jitter else "no colour jitter"
            how = f"per batch: box decoded by {cropdecode.decoder()}, MindSpore Resize, flip; {jitter}"
        else:
            how = "per image: " + " → ".join(type(op).__name__ for op in transforms.train_map_ops(cfg))
        lines.append(f"  {name:20s} {how}; normalised on the device")
    return lines


def device_stage_cost(cfg, batch: int) -> float:
    """ms per image of the engines' device stage (jitter + normalise) when it runs on this CPU (torch)."""
    import random

    import numpy as np
    import torch

    from mindzoo.data import jitter
    from mindzoo.engine.torch.input_stage import InputStage

    stage = InputStage(cfg, torch.device("cpu"))
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (batch, cfg.input_size, cfg.input_size, 3),
                                                                  dtype=np.uint8))
    rows = None
    if cfg.train.color_jitter is not None:
        rows = np.stack([jitter.sample(cfg.train.color_jitter, random.Random(i)) for i in range(batch)])
        rows = torch.from_numpy(rows)
    stage(images, rows)
    start = time.perf_counter()
    for _ in range(3):
        stage(images, rows)
    return (time.perf_counter() - start) / 3 / batch * 1000


def report(rates: dict[str, list[tuple[float, float]]], cfg, args: argparse.Namespace) -> None:
    wall = {name: statistics.median(r for r, _ in values) for name, values in rates.items()}
    cpu = {name: statistics.median(c for _, c in values) for name, values in rates.items()}
    print(f"{args.images} JPEGs, {cfg.name} train transforms at {cfg.input_size}, batch {args.batch_size}, "
          f"{args.workers} workers, median of {args.repeat} interleaved epochs")
    labels = {"imagefolder": "ImageFolderDataset + the recipe's ops",
              "mindrecord_default": "MindRecord, store_size 0 (original bytes)",
              "mindrecord": f"MindRecord, store_size {args.store_size}"}
    print("train input path per data config:", *train_paths(), sep="\n")
    print(f"device stage (jitter + normalise) if it ran on this CPU: {device_stage_cost(cfg, args.batch_size):.2f} "
          "ms per image, with torch's threads; on an accelerator it runs beside the training step")
    for name, label in labels.items():
        epochs = ", ".join(f"{r:.0f}" for r, _ in rates[name])
        print(f"{label:45s} {wall[name]:6.0f} img/s ({epochs})  {cpu[name]:6.0f} img per CPU-second")
    # Wall-clock rates swing with other load on a shared machine; CPU cost per image does not, and a
    # CPU-bound pipeline's rate on an idle machine is proportional to it.
    print(f"ratio mindrecord_default_vs_imagefolder {wall['mindrecord_default'] / wall['imagefolder']:.2f}")
    print(f"ratio mindrecord_default_vs_imagefolder_cpu {cpu['mindrecord_default'] / cpu['imagefolder']:.2f}")
    print(f"ratio mindrecord_vs_imagefolder_cpu {cpu['mindrecord'] / cpu['imagefolder']:.2f}")
    print(f"ratio mindrecord_vs_imagefolder {wall['mindrecord'] / wall['imagefolder']:.2f}")


if __name__ == "__main__":
    main()
