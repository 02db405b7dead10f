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
                   storage: Any = None, cache_dir: Path | None = None) -> Any:
    """A batched ``mindspore.dataset`` of (image float32 CxHxW, label int32).

    ``source``: a folder with ``dataset.json`` or an s3:// prefix published by ``mindzoo preprocess``.
    ``data_config``: a :class:`DataConfig` or a data-config / model name. ``input_size``: SPPNet's extra
    train size (180) or a reduced size for small runs. ``drop_remainder`` defaults to True for training and
    False for evaluation. Note: ``seed`` sets MindSpore's global dataset seed.
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
    if train:
        shards = {"num_shards": world_size, "shard_id": rank} if world_size > 1 else {}
        data = ds.MindDataset(files, columns_list=COLUMNS, shuffle=True, num_parallel_workers=workers, **shards)
        ops = transforms.train_ops(cfg, extra)
    else:
        data = ds.MindDataset(files, columns_list=COLUMNS, num_parallel_workers=workers,
                              sampler=_eval_sampler(info["splits"][split]["images"], rank, world_size))
        ops = transforms.eval_ops(cfg)
    data = data.map(operations=ops, input_columns="image", num_parallel_workers=workers)
    return data.batch(batch_size, drop_remainder=train if drop_remainder is None else drop_remainder)


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
