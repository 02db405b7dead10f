"""Input pipelines for the engine, on :func:`mindzoo.data.pipeline.create_dataset`.

Training builds one pipeline per epoch, seeded by (run seed, epoch): the sample
order and augmentation of epoch *e* do not depend on whether the run was resumed,
and a resume in the middle of an epoch skips the batches already trained.
Evaluation reads a split in order on one process and keeps the last partial
batch, padded to the batch size so a compiled graph sees one shape; padded rows
are dropped again, so every image is counted exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mindzoo.archs import DataConfig

__all__ = ["epoch_seed", "eval_batches", "file_ids", "steps_per_epoch", "train_batches"]


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch) % 2**31


def train_batches(local: Path, data_cfg: DataConfig, batch_size: int, *, size: int, rank: int, world_size: int,
                  seed: int, workers: int, skip: int = 0, limit: int = 0,
                  device_jitter: bool = True) -> tuple[Iterator[Any], int]:
    """(iterator of (images, labels) Tensors, number of batches) for one epoch of one rank."""
    data, batches = epoch_dataset(local, data_cfg, batch_size, size=size, rank=rank, world_size=world_size,
                                  seed=seed, workers=workers, skip=skip, limit=limit, device_jitter=device_jitter)
    return data.create_tuple_iterator(num_epochs=1, do_copy=False), batches


def epoch_dataset(local: Path, data_cfg: DataConfig, batch_size: int, *, size: int, rank: int, world_size: int,
                  seed: int, workers: int, skip: int, limit: int, device_jitter: bool = True) -> tuple[Any, int]:
    """(the batched dataset of one epoch of one rank, cut to ``limit`` batches and past ``skip``; its batches)."""
    from mindzoo.data.pipeline import create_dataset

    data = create_dataset(local, "train", data_cfg, batch_size, train=True, rank=rank, world_size=world_size,
                          seed=seed, input_size=size, num_parallel_workers=workers, device_jitter=device_jitter)
    total = data.get_dataset_size()
    if limit:
        total = min(total, limit)
        data = data.take(total)
    if skip:
        data = data.skip(skip)
    return data, max(0, total - skip)


def steps_per_epoch(local: Path, data_cfg: DataConfig, batch_size: int, *, rank: int, world_size: int,
                    workers: int) -> int:
    from mindzoo.data.pipeline import create_dataset

    data = create_dataset(local, "train", data_cfg, batch_size, train=True, rank=rank, world_size=world_size,
                          num_parallel_workers=workers)
    return data.get_dataset_size()


def eval_batches(local: Path, data_cfg: DataConfig, split: str, batch_size: int, *, rank: int = 0,
                 world_size: int = 1, workers: int) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """(images padded to ``batch_size``, labels, number of real rows) over this rank's disjoint share of a
    split (every ``world_size``-th record from ``rank``; the whole split on one process), in order."""
    from mindzoo.data.pipeline import create_dataset

    data = create_dataset(local, split, data_cfg, batch_size, train=False, rank=rank, world_size=world_size,
                          num_parallel_workers=workers, drop_remainder=False)
    for images, labels in data.create_tuple_iterator(num_epochs=1, output_numpy=True):
        real = len(labels)
        if real < batch_size:
            pad = np.zeros((batch_size - real, *images.shape[1:]), images.dtype)
            images = np.concatenate([images, pad])
        yield images, labels, real


def file_ids(local: Path, split: str) -> list[str]:
    """``file_id`` of every record of a split in the order :func:`eval_batches` reads them (one process)."""
    import mindspore.dataset as ds

    from mindzoo.data import manifest

    info = manifest.load(local)
    files = [str(p) for p in manifest.shard_paths(local, info, split)]
    data = ds.MindDataset(files, columns_list=["file_id"], sampler=ds.SequentialSampler())
    return [str(row[0]) for row in data.create_tuple_iterator(num_epochs=1, output_numpy=True)]
