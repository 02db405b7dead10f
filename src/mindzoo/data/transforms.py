"""Each recipe's image transforms, built from its :class:`mindzoo.archs.DataConfig`.

Nothing here is specific to a model: the data config says which crop, flip,
colour jitter, resize and normalisation the recipe uses (modelzoo_facts.md
§1.2, §2.2, §3.2, §4.2, §5.2), and these functions translate it to the same
MindSpore ops, in the same order, that the recipes' ``dataset.py`` files use.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mindzoo.archs import DataConfig, EvalTransform


def _vision() -> Any:
    import mindspore.dataset.vision as vision

    return vision


def _inter(cfg: DataConfig) -> Any:
    inter = _vision().Inter
    return {"bilinear": inter.BILINEAR, "bicubic": inter.BICUBIC, "nearest": inter.NEAREST}[cfg.interpolation]


def normalize_ops(cfg: DataConfig) -> list[Any]:
    """``uint8``: Normalize(mean*255, std*255) on the raw image; ``rescale``: Rescale(1/255) then Normalize."""
    vision = _vision()
    if cfg.normalize == "rescale":
        ops = [vision.Rescale(1.0 / 255.0, 0.0), vision.Normalize(list(cfg.mean), list(cfg.std))]
    else:
        ops = [vision.Normalize([m * 255 for m in cfg.mean], [s * 255 for s in cfg.std])]
    return [*ops, vision.HWC2CHW()]


def normalization(cfg: DataConfig) -> tuple[float | None, np.ndarray, np.ndarray]:
    """(rescale, mean, std) of :func:`normalize_ops` as numbers: ``x * rescale`` (when not None), then
    ``(x - mean) / std`` per channel, in float32. The engines apply it to training batches on the device."""
    if cfg.normalize == "rescale":
        return 1.0 / 255.0, np.asarray(cfg.mean, np.float32), np.asarray(cfg.std, np.float32)
    return None, np.asarray([m * 255 for m in cfg.mean], np.float32), np.asarray([s * 255 for s in cfg.std], np.float32)


def normalize_batch(images: np.ndarray, cfg: DataConfig) -> np.ndarray:
    """uint8 NHWC → float32 NCHW, as :func:`normalize_ops` does per image (the reference for the engines)."""
    rescale, mean, std = normalization(cfg)
    x = images.astype(np.float32)
    if rescale is not None:
        x = x * np.float32(rescale)
    return np.ascontiguousarray(((x - mean) / std).transpose(0, 3, 1, 2))


def train_batch(cfg: DataConfig, extra_size: int | None, seed: int, *, device_jitter: bool = True) -> Any:
    """mindzoo's batch builder for this config (:class:`mindzoo.data.trainbatch.TrainBatch`: the same crops,
    pixels, flips and jitter draws as :func:`train_ops`, faster), or None where it does not apply: a
    ``pad_crop`` recipe (CIFAR-10), or a package built without the crop decoder."""
    from mindzoo.data import cropdecode
    from mindzoo.data.trainbatch import TrainBatch

    if cfg.train.kind != "random_resized_crop" or cropdecode.decoder() != "libjpeg-turbo":
        return None
    return TrainBatch(cfg, extra_size, seed, _inter(cfg), device_jitter=device_jitter)


def train_map_ops(cfg: DataConfig, extra_size: int | None = None) -> list[Any]:
    """:func:`train_ops` up to the normalisation, which the engine does on the device (:func:`normalization`)."""
    return train_ops(cfg, extra_size)[:-len(normalize_ops(cfg))]


def train_ops(cfg: DataConfig, extra_size: int | None = None) -> list[Any]:
    """The recipe's train augmentation on encoded image bytes, as its ``dataset.py`` writes it.

    ``random_resized_crop``: RandomCropDecodeResize(input_size, scale, ratio) [→ Resize(extra_size), the
    SPPNet 180 pass] → flip → colour jitter → normalise. ``pad_crop`` (CIFAR-10): Decode → RandomCrop with
    zero padding → flip → square Resize(input_size) → colour jitter → normalise.
    """
    vision, t, inter = _vision(), cfg.train, _inter(cfg)
    if t.kind == "random_resized_crop":
        ops = [vision.RandomCropDecodeResize(cfg.input_size, scale=tuple(t.scale), ratio=tuple(t.ratio),
                                             interpolation=inter)]
        if extra_size:
            ops.append(vision.Resize(extra_size, inter))
    else:
        ops = [vision.Decode(), vision.RandomCrop(t.crop_size, padding=t.padding, fill_value=0)]
    if t.hflip > 0:
        ops.append(vision.RandomHorizontalFlip(t.hflip))
    if t.kind == "pad_crop":
        ops.append(vision.Resize((cfg.input_size, cfg.input_size), inter))
    if t.color_jitter is not None:
        j = t.color_jitter
        ops.append(vision.RandomColorAdjust(brightness=j.brightness, contrast=j.contrast, saturation=j.saturation,
                                            hue=j.hue))
    return ops + normalize_ops(cfg)


def eval_ops(cfg: DataConfig, transform: EvalTransform | None = None) -> list[Any]:
    """Decode → Resize (short side, or a fixed square) → CenterCrop → normalise.

    ``transform``: another resize/crop than eval.py's (the 310 app's, :attr:`DataConfig.infer`)."""
    vision, e, inter = _vision(), transform or cfg.eval, _inter(cfg)
    size = e.resize_size if e.resize_mode == "short_side" else (e.resize_size, e.resize_size)
    return [vision.Decode(), vision.Resize(size, inter), vision.CenterCrop(e.crop_size), *normalize_ops(cfg)]


def sized(cfg: DataConfig, input_size: int | None) -> tuple[DataConfig, int | None]:
    """(config, extra train size) for a requested input size.

    A size in ``extra_train_sizes`` (SPPNet's 180) keeps the config and adds a final resize; any other size
    rescales the whole config (:meth:`DataConfig.at_size`, for small CPU runs).
    """
    if input_size is None or input_size == cfg.input_size:
        return cfg, None
    if input_size in cfg.extra_train_sizes:
        return cfg, input_size
    return cfg.at_size(input_size), None


def min_stored_size(cfg: DataConfig) -> int:
    """The smallest stored short side this config can use without enlarging images first."""
    return max(cfg.input_size, cfg.eval.resize_size, cfg.infer.resize_size)
