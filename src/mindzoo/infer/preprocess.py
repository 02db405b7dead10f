"""One image's preprocessing as the recipe's 310 app does it, with the eval pipeline's MindSpore ops and order.

The 310 apps resize as eval.py does except ZFNet/SPPNet's (short side 256, where eval.py
squashes to 256x256): :attr:`mindzoo.archs.DataConfig.infer` says which.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mindzoo.archs import DataConfig


class BadImage(Exception):
    """The image cannot be decoded; the message is the reason."""


class Preprocessor:
    """bytes → float32 [1, 3, crop, crop]: Decode → Resize → CenterCrop → normalise → HWC2CHW."""

    def __init__(self, cfg: DataConfig) -> None:
        from mindzoo.data.transforms import eval_ops

        self.cfg = cfg
        decode, *self.ops = eval_ops(cfg, cfg.infer)
        self.decode = decode

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (1, 3, self.cfg.infer.crop_size, self.cfg.infer.crop_size)

    def __call__(self, data: bytes) -> np.ndarray:
        from mindzoo.config import MAX_PIXELS
        from mindzoo.data import images

        if not data:
            raise BadImage("empty or unreadable file")
        try:  # checked first: MindSpore's decoder can fail on the *next* image after a broken one
            images.inspect(data, "header", MAX_PIXELS)  # a decompression bomb is a bad image, not a crash
        except images.BadImage as err:
            raise BadImage(str(err)) from None
        try:
            image: Any = self.decode(np.frombuffer(data, np.uint8))
        except (RuntimeError, ValueError) as err:
            from mindzoo.data.transforms import eval_ops

            self.decode = eval_ops(self.cfg, self.cfg.infer)[0]  # a fresh decoder for the next image
            raise BadImage(_first_line(err)) from None
        for op in self.ops:
            image = op(image)
        return np.ascontiguousarray(image, dtype=np.float32)[None]


def _first_line(err: Exception) -> str:
    for line in str(err).splitlines():
        line = line.strip()
        if line and not line.startswith("-") and "Dataset Pipeline Error" not in line and "Exception thrown" not in line:
            return line[:200]
    return type(err).__name__
