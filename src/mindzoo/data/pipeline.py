"""Training and evaluation input pipelines over the MindRecord shards.

``create_dataset`` reads a converted dataset (a local folder, or an ``s3://``
prefix fetched into the local cache) with ``MindDataset`` and applies the
recipe's transforms from its data config. Data parallelism: training shards
samples by ``rank``/``world_size`` (MindSpore pads the last shard so every
rank runs the same number of steps); evaluation gives each rank an exact,
disjoint subset (every image counted once over all ranks) and by default
keeps the last partial batch. Given the same seed and worker count, the
sample order and the random augmentation are the same on every run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mindzoo.archs import DataConfig, get_data_config
from mindzoo.configkit import check
from mindzoo.data import cache, manifest, transforms
from mindzoo.errors import DataError

COLUMNS = ["image", "label"]


def default_workers() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cpus))


def create_dataset(source: str | Path, split: str, data_config: DataConfig | str, batch_size: int, *,
                   train: bool, rank: int = 0, world_size: int = 1, seed: int = 0, input_size: int | None = None,
                   num_parallel_workers: int | None = None, drop_remainder: bool | None = None,
                   storage: Any = None, cache_dir: Path | None = None, device_jitter: bool = True) -> Any:
    """A batched ``mindspore.dataset`` of (image, label int32).

    Evaluation images are float32 CxHxW, normalised. Training images are uint8 HxWxC: the engine
    normalises each batch on the device (:func:`mindzoo.data.transforms.normalization`), which takes
    a quarter of the host-to-device bytes and the last CPU ops off the input pipeline.

    ``source``: a folder with ``dataset.json`` or an s3:// prefix published by ``mindzoo preprocess``.
    ``data_config``: a :class:`DataConfig` or a data-config / model name. ``input_size``: SPPNet's extra
    train size (180) or a reduced size for small runs. ``drop_remainder`` defaults to True for training and
    False for evaluation. ``device_jitter``: leave the recipe's colour jitter to the device (a ``jitter`` column
    of draws) rather than apply it here; an engine training on the CPU applies it here, where MindSpore's uint8
    ops are cheaper than the float stage. Note: ``seed`` sets MindSpore's global dataset seed.
    """
    check(batch_size >= 1, "batch_size", "must be >= 1")
    check(world_size >= 1, "world_size", "must be >= 1")
    check(0 <= rank < world_size, "rank", f"must be in 0..{world_size - 1}")
    cfg, extra = transforms.sized(get_data_config(data_config) if isinstance(data_config, str) else data_config,
                                  input_size)
    local = cache.local_dataset(source, storage=storage, cache_dir=cache_dir)
    info = manifest.load(local)
    _check_stored_size(info, cfg)
    files = [str(p) for p in manifest.shard_paths(local, info, split)]
    workers = min(num_parallel_workers or default_workers(), os.cpu_count() or 1)  # MindSpore's own limit

    import mindspore.dataset as ds

    ds.config.set_seed(seed)
    if not train:
        data = ds.MindDataset(files, columns_list=COLUMNS, num_parallel_workers=workers,
                              sampler=_eval_sampler(info["splits"][split]["images"], rank, world_size))
        data = data.map(operations=transforms.eval_ops(cfg), input_columns="image", num_parallel_workers=workers)
        return data.batch(batch_size, drop_remainder=bool(drop_remainder))
    shards = {"num_shards": world_size, "shard_id": rank} if world_size > 1 else {}
    keep = True if drop_remainder is None else drop_remainder
    build = transforms.train_batch(cfg, extra, seed, device_jitter=device_jitter)
    if build is None:  # CIFAR-10's padded crop, or no crop decoder: MindSpore's ops per image
        data = ds.MindDataset(files, columns_list=COLUMNS, shuffle=True, num_parallel_workers=workers, **shards)
        data = data.map(operations=transforms.train_map_ops(cfg, extra), input_columns="image",
                        num_parallel_workers=workers)
        return data.batch(batch_size, drop_remainder=keep)
    data = ds.MindDataset(files, columns_list=[*COLUMNS, "file_id"], shuffle=True, num_parallel_workers=workers,
                          **shards)
    return data.batch(batch_size, drop_remainder=keep, per_batch_map=build, input_columns=["image", "file_id", "label"],
                      output_columns=build.columns, num_parallel_workers=workers)


def _eval_sampler(count: int, rank: int, world_size: int) -> Any:
    """Sequential on one rank; otherwise every ``world_size``-th record, with no padding or repeats."""
    import mindspore.dataset as ds

    if world_size == 1:
        return ds.SequentialSampler()
    return ds.SubsetSampler(list(range(rank, count, world_size)))


def _check_stored_size(info: dict[str, Any], cfg: DataConfig) -> None:
    stored = int(info.get("settings", {}).get("store_size") or 0)
    needed = transforms.min_stored_size(cfg)
    if stored and stored < needed:
        raise DataError(f"dataset {info['name']} stores images with short side {stored} px, less than the "
                        f"{needed} px data config {cfg.name} resizes to; run preprocess with --store-size 0 "
                        f"or >= {needed}")


def describe(source: str | Path, *, storage: Any = None, cache_dir: Path | None = None) -> dict[str, Any]:
    """``dataset.json`` of a converted dataset (classes, counts, shards), fetching it if needed."""
    return manifest.load(cache.local_dataset(source, storage=storage, cache_dir=cache_dir))
