"""mindzoo.data.fit: a dataset's recorded image sizes against every registered data config's transforms."""

from __future__ import annotations

import dataclasses

import pytest

from mindzoo.archs import DATA_CONFIGS
from mindzoo.data import fit
from mindzoo.errors import DataError


def _info(side, split="train"):
    return {"name": "d", "splits": {split: {"image_size": {"min_width": side, "max_width": 500, "min_height": side + 3,
                                                           "max_height": 500, "channels": [3]}}}}


def _smallest_fitting(cfg) -> int:
    """The smallest side a config's train transform takes (1 when it resizes first and takes any)."""
    t = cfg.train
    return max(1, t.crop_size - 2 * t.padding) if t.kind == "pad_crop" else 1


@pytest.mark.parametrize("name", sorted(DATA_CONFIGS))
def test_every_data_config_takes_its_smallest_size_and_refuses_one_less(name):
    cfg = DATA_CONFIGS[name]
    smallest = _smallest_fitting(cfg)
    fit.check(_info(smallest), cfg, train_splits=("train",), eval_splits=("val",))
    fit.check(_info(1), cfg, eval_splits=("train",))  # eval transforms resize before they crop: any size, any split
    if smallest > 1:
        with pytest.raises(DataError, match=rf"as small as {smallest - 1}x{smallest + 2} px.*data.train.crop_size"):
            fit.check(_info(smallest - 1), cfg, train_splits=("train",))


def test_the_cifar_crop_on_28_px_images_names_the_keys_to_change():
    cfg = DATA_CONFIGS["googlenet_cifar10"]
    unpadded = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, padding=0))
    with pytest.raises(DataError) as err:
        fit.check(_info(28), unpadded, train_splits=("train",))
    message = str(err.value)
    assert "crops 32 px" in message and "--set data.train.crop_size=28" in message and "--input-size" in message
    old = {"name": "old", "splits": {"train": {}}}  # published before sizes were recorded: unchecked
    fit.check(old, unpadded, train_splits=("train",))
