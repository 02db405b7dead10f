"""The last training transforms, on the device: colour jitter and normalisation of uint8 batches.

The MindSpore twin of :mod:`mindzoo.engine.torch.input_stage` (same formulas, same tests against
:func:`mindzoo.data.jitter.reference`), as a Cell so graph mode compiles it once per batch shape.
"""

from __future__ import annotations

from typing import Any

import mindspore as ms
from mindspore import nn, ops

from mindzoo.archs import DataConfig
from mindzoo.data import jitter
from mindzoo.data.transforms import normalization


def _gray(x: Any) -> Any:
    return (jitter.GRAY[0] * x[:, 0:1] + jitter.GRAY[1] * x[:, 1:2] + jitter.GRAY[2] * x[:, 2:3])


def _hue(x: Any, f: Any) -> Any:
    """Shift the hue as MindSpore's AdjustHue does (see the torch twin); ``f``: (N, 1, 1, 1)."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    high = ops.maximum(ops.maximum(r, g), b)
    low = ops.minimum(ops.minimum(r, g), b)
    span = high - low
    ones = ops.ones_like(span)
    safe = ops.where(span > 0, span, ones)
    h = ops.where(high == r, (g - b) / safe, ops.where(high == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    h = ops.where(span > 0, h / 6, ops.zeros_like(h))
    h = ops.remainder(ops.round(h * 256) + ops.trunc(f * 255), 256) / 256
    s = ops.where(high > 0, span / ops.where(high > 0, high, ones), ops.zeros_like(high))
    s = ops.round(s * 255) / 255
    sector = h * 6
    k = ops.concat([ops.remainder(5 + sector, 6), ops.remainder(3 + sector, 6), ops.remainder(1 + sector, 6)], 1)
    weight = ops.clamp(ops.minimum(k, 4 - k), 0, 1)
    return ops.where(f == 0, x, high * (1 - s * weight))  # a factor of exactly 0: MindSpore skips the op


class InputStage(nn.Cell):
    """uint8 NHWC (+ float32 jitter rows, :func:`mindzoo.data.jitter.sample`) → float32 NCHW, normalised."""

    def __init__(self, cfg: DataConfig, jittered: bool) -> None:
        super().__init__()
        rescale, mean, std = normalization(cfg)
        self.rescale = 1.0 if rescale is None else float(rescale)
        self.mean = ms.Tensor(mean.reshape(1, 3, 1, 1))
        self.std = ms.Tensor(std.reshape(1, 3, 1, 1))
        self.jittered = jittered

    def construct(self, images: Any, params: Any) -> Any:
        x = ops.cast(ops.transpose(images, (0, 3, 1, 2)), ms.float32)
        if self.jittered:
            x = self.jitter(x, params)
        return (x * self.rescale - self.mean) / self.std

    def jitter(self, x: Any, params: Any) -> Any:
        """As the torch twin: one blend per step for brightness, contrast and saturation, or the hue shift."""
        n = x.shape[0]
        for step in range(4):
            kind = params[:, step].reshape(n, 1, 1, 1)
            which = ops.cast(params[:, step:step + 1], ms.int32)
            factor = ops.gather_elements(params[:, 4:], 1, which).reshape(n, 1, 1, 1)
            gray = _gray(x)
            mean = ops.round(ops.mean(gray, (1, 2, 3), True))
            reference = ops.where(kind == 0, ops.zeros_like(gray), ops.where(kind == 1, mean, gray))
            blended = reference * (1 - factor) + x * factor
            hue_factor = ops.where(kind == 3, factor, ops.zeros_like(factor))
            x = ops.clamp(ops.where(kind == 3, _hue(x, hue_factor), blended), 0, 255)
        return x
