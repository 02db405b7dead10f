"""Input pipelines of the torch engine: the MindSpore ones, numpy out.

The same MindRecord reader (``MindDataset``), transforms, per-(seed, epoch)
shuffling, rank sharding and resume skipping as the MindSpore engine
(:mod:`mindzoo.engine.mindspore.data`, :func:`mindzoo.data.pipeline.create_dataset`),
so both engines train on identical preprocessing; only the final hand-over
differs (numpy arrays, turned into torch tensors by the backend).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mindzoo.archs import DataConfig
from mindzoo.engine.mindspore.data import epoch_dataset, epoch_seed, eval_batches, file_ids, steps_per_epoch

__all__ = ["epoch_seed", "eval_batches", "file_ids", "steps_per_epoch", "train_batches"]


def train_batches(local: Path, data_cfg: DataConfig, batch_size: int, *, size: int, rank: int, world_size: int,
                  seed: int, workers: int, skip: int = 0, limit: int = 0,
                  device_jitter: bool = True) -> tuple[Iterator[Any], int]:
    """(iterator of (images uint8 NHWC, labels int32[, jitter rows]) numpy batches, number of batches) for one
    epoch of one rank; the backend's input stage finishes the images on the device."""
    data, total = epoch_dataset(local, data_cfg, batch_size, size=size, rank=rank, world_size=world_size,
                                seed=seed, workers=workers, skip=skip, limit=limit, device_jitter=device_jitter)
    batches = data.create_tuple_iterator(num_epochs=1, output_numpy=True)
    return (tuple(np.asarray(column) for column in columns) for columns in batches), total
