"""Does a dataset fit a recipe's transforms? Checked before any data pipeline is built.

``dataset.json`` records each split's stored image sizes (``image_size``:
min/max width and height, modes, channels). A transform that cannot take the
smallest image would otherwise fail inside MindSpore's data pipeline after the
first batch, with a traceback that names no setting. Today one transform can:
``pad_crop`` (the CIFAR-10 recipes) takes a ``crop_size`` crop from the image
zero-padded by ``padding`` on each side, so both sides need
``>= crop_size - 2 * padding``. ``random_resized_crop`` and the eval
resize-then-center-crop take any size. Datasets published before the sizes
were recorded are not checked.
"""

from __future__ import annotations

from typing import Any

from mindzoo.archs import DataConfig
from mindzoo.errors import DataError


def check(info: dict[str, Any], cfg: DataConfig, *, train_splits: tuple[str, ...] = (),
          eval_splits: tuple[str, ...] = (), key: str = "data") -> None:
    """One DataError line naming the setting to change if a split of ``info`` cannot go through ``cfg``.

    ``train_splits`` / ``eval_splits``: the splits this step reads with the train / the eval transforms (evaluate
    reads even the train split with eval transforms). ``key``: the dotted prefix under which the
    step's flags set the data config.
    """
    for split in train_splits:
        size = _size(info, split)
        if size:
            _train_fits(info, cfg, size, key)
    for split in eval_splits:
        _size(info, split)  # resize, then center crop: any recorded size fits (see the module docstring)


def _size(info: dict[str, Any], split: str) -> dict[str, Any]:
    return info.get("splits", {}).get(split, {}).get("image_size") or {}


def _train_fits(info: dict[str, Any], cfg: DataConfig, size: dict[str, Any], key: str) -> None:
    t = cfg.train
    if t.kind != "pad_crop":
        return
    smallest = min(int(size["min_width"]), int(size["min_height"]))
    if smallest + 2 * t.padding >= t.crop_size:
        return
    raise DataError(
        f"dataset {info.get('name', '?')} does not fit data config {cfg.name}: its train images are as small as "
        f"{size['min_width']}x{size['min_height']} px, but the recipe crops {t.crop_size} px after padding "
        f"{t.padding} px; set {key}.train.crop_size to at most {smallest + 2 * t.padding} "
        f"(e.g. --set {key}.train.crop_size={smallest}) or raise {key}.train.padding "
        f"(then --input-size sets the size the crop is resized to)")
