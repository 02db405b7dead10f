"""Training batches built in one call per batch: crop-decode, resize and flip each image.

For the recipes whose training starts with a random-resized crop (every ImageNet one), this
replaces the per-image map of MindSpore's ``RandomCropDecodeResize → [Resize] → flip →
RandomColorAdjust → Normalize → HWC2CHW`` with a ``per_batch_map`` that, per image:

1. draws the crop box (:func:`mindzoo.data.cropdecode.crop_box`, MindSpore's own sampling) and
   decodes only that box (:func:`mindzoo.data.cropdecode.decode_crop`, identical pixels);
2. resizes it with MindSpore's ``Resize`` (the same interpolation and pixels as the fused op),
   then SPPNet's extra size when asked;
3. flips it with the recipe's probability;
4. draws its colour jitter (:func:`mindzoo.data.jitter.sample`) and, for an accelerator, leaves it
   to the device; training on the CPU applies it here with MindSpore's ops
   (:func:`mindzoo.data.jitter.reference`), which are cheaper there than the float stage.

Normalisation (and the device's jitter) then run in the engines' ``input_stage``: a batch is
uint8 NHWC images, int32 labels and, with device jitter, float32 jitter rows. One Python
call per batch instead of one per image, and the decoder releasing the GIL, is what lets the
worker threads keep every core decoding.

Each image's randomness comes from (seed, ``file_id``): the same sample gets the same crop,
flip and jitter whichever worker builds its batch, and however many workers there are.
"""

from __future__ import annotations

import hashlib
import random
import threading
from typing import Any

import numpy as np

from mindzoo.archs import DataConfig
from mindzoo.data import cropdecode, jitter


class TrainBatch:
    """``per_batch_map`` over (image bytes, file_id, label) columns → :attr:`columns`."""

    def __init__(self, cfg: DataConfig, extra_size: int | None, seed: int, interpolation: Any, *,
                 device_jitter: bool = True) -> None:
        t = cfg.train
        self.scale, self.ratio, self.hflip, self.color_jitter = tuple(t.scale), tuple(t.ratio), t.hflip, t.color_jitter
        self.size, self.extra_size, self.seed, self.interpolation = cfg.input_size, extra_size, seed, interpolation
        self.device_jitter = device_jitter and t.color_jitter is not None
        self.columns = ["image", "label", *(["jitter"] if self.device_jitter else [])]
        self._local = threading.local()  # MindSpore's eager ops, one set per worker thread

    def rng(self, file_id: Any) -> random.Random:
        key = file_id.item() if isinstance(file_id, np.ndarray) else file_id
        key = key.decode() if isinstance(key, bytes) else str(key)
        digest = hashlib.blake2b(f"{self.seed}/{key}".encode(), digest_size=8).digest()
        return random.Random(int.from_bytes(digest, "little"))

    def __call__(self, images: list[np.ndarray], file_ids: list[np.ndarray], labels: list[np.ndarray],
                 info: Any = None) -> tuple[np.ndarray, ...]:
        side = self.extra_size or self.size
        out = np.empty((len(images), side, side, 3), np.uint8)
        rows = np.empty((len(images), jitter.WIDTH), np.float32)
        for i, (image, file_id) in enumerate(zip(images, file_ids)):
            rng = self.rng(file_id)
            resized = self._resize(self._crop(image, rng))
            resized = resized[:, ::-1] if rng.random() < self.hflip else resized
            if self.color_jitter is not None:
                rows[i] = jitter.sample(self.color_jitter, rng)
                if not self.device_jitter:  # training on the CPU: MindSpore's own uint8 ops, here
                    resized = jitter.reference(np.ascontiguousarray(resized), rows[i])
            out[i] = resized
        labels_out = np.asarray(labels, np.int32).reshape(len(images))
        return (out, labels_out, rows) if self.device_jitter else (out, labels_out)

    def _crop(self, image: np.ndarray, rng: random.Random) -> np.ndarray:
        data = image.tobytes()
        size = cropdecode.jpeg_size(data)
        if size is not None:
            return cropdecode.decode_crop(data, *cropdecode.crop_box(*size, self.scale, self.ratio, rng))
        whole = self._ops()[0](image)  # a CMYK JPEG or another format: MindSpore decodes it whole
        x, y, w, h = cropdecode.crop_box(whole.shape[1], whole.shape[0], self.scale, self.ratio, rng)
        return np.ascontiguousarray(whole[y:y + h, x:x + w])

    def _resize(self, crop: np.ndarray) -> np.ndarray:
        _, resize, extra = self._ops()
        resized = resize(crop)
        return extra(resized) if extra is not None else resized

    def _ops(self) -> tuple[Any, Any, Any]:
        ops = getattr(self._local, "ops", None)
        if ops is None:
            import mindspore.dataset.vision as vision

            extra = vision.Resize(self.extra_size, self.interpolation) if self.extra_size else None
            ops = self._local.ops = (vision.Decode(), vision.Resize((self.size, self.size), self.interpolation), extra)
        return ops
