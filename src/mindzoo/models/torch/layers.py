"""MindSpore-equivalent layers for the torch port (facts sheet §0).

* TF-style 'same' padding: output ceil(in/stride), odd extra pixel at bottom/right. torch's
  symmetric ``padding=k//2`` only matches for stride 1 and odd kernels, so other cases pad
  explicitly with ``F.pad`` before a padding-0 conv/pool.
* MaxPool 'same' pads with -inf; AvgPool 'same' leaves padded cells out of the mean
  (checked numerically against MindSpore 2.10).
* LRN as ``P.LRN``: x / (bias + alpha * sum_{c-r..c+r} x^2)^beta, alpha not divided by the window.
* BatchNorm momentum: MindSpore ``m`` is torch ``1 - m``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mindzoo.archs import BatchNormConfig

__all__ = ["AvgPool2dSame", "Conv2dSame", "LRN", "MaxPool2dSame", "batch_norm1d", "batch_norm2d", "conv2d",
           "same_pads"]


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _same_1d(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2  # extra pixel after (bottom/right), as TF/MindSpore


def same_pads(height: int, width: int, kernel, stride, dilation=1) -> tuple[int, int, int, int]:
    """``F.pad`` tuple (left, right, top, bottom) of a TF-style 'same' window."""
    (kh, kw), (sh, sw), (dh, dw) = _pair(kernel), _pair(stride), _pair(dilation)
    top, bottom = _same_1d(height, kh, sh, dh)
    left, right = _same_1d(width, kw, sw, dw)
    return left, right, top, bottom


def _static_same(kernel, stride, dilation=1) -> tuple[int, int] | None:
    """Symmetric padding equal to 'same' for every input size (stride 1, odd effective kernel), else None."""
    (kh, kw), (sh, sw), (dh, dw) = _pair(kernel), _pair(stride), _pair(dilation)
    if (sh, sw) != (1, 1) or ((kh - 1) * dh) % 2 or ((kw - 1) * dw) % 2:
        return None
    return (kh - 1) * dh // 2, (kw - 1) * dw // 2


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d`` with MindSpore/TF 'same' padding computed from the input size."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, padding=0, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, same_pads(x.shape[-2], x.shape[-1], self.kernel_size, self.stride, self.dilation))
        return super().forward(x)


def conv2d(cin: int, cout: int, kernel, stride=1, padding: int | str = "same", *, bias: bool = False,
           dilation: int = 1, groups: int = 1) -> nn.Conv2d:
    """A MindSpore-padded conv: ``padding`` is 'same', 'valid' or an explicit symmetric pixel count."""
    common = {"stride": stride, "dilation": dilation, "groups": groups, "bias": bias}
    if padding == "valid":
        return nn.Conv2d(cin, cout, kernel, padding=0, **common)
    if padding == "same":
        static = _static_same(kernel, stride, dilation)
        if static is None:
            return Conv2dSame(cin, cout, kernel, **common)
        return nn.Conv2d(cin, cout, kernel, padding=static, **common)
    return nn.Conv2d(cin, cout, kernel, padding=padding, **common)


class MaxPool2dSame(nn.MaxPool2d):
    """MaxPool with 'same' padding filled with -inf."""

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__(kernel_size, stride)

    def forward(self, x: Tensor) -> Tensor:
        pads = same_pads(x.shape[-2], x.shape[-1], self.kernel_size, self.stride)
        return super().forward(F.pad(x, pads, value=float("-inf")))


class AvgPool2dSame(nn.Module):
    """AvgPool with 'same' padding; padded cells are left out of the count (as MindSpore)."""

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: Tensor) -> Tensor:
        static = _static_same(self.kernel_size, self.stride)
        if static is not None:
            return F.avg_pool2d(x, self.kernel_size, self.stride, static, count_include_pad=False)
        pads = same_pads(x.shape[-2], x.shape[-1], self.kernel_size, self.stride)
        ones = F.pad(torch.ones_like(x[:1, :1]), pads)
        total = F.avg_pool2d(F.pad(x, pads), self.kernel_size, self.stride)
        return total / F.avg_pool2d(ones, self.kernel_size, self.stride)


class LRN(nn.Module):
    """MindSpore ``P.LRN`` (ACROSS_CHANNELS); torch's LocalResponseNorm divides alpha by the size."""

    def __init__(self, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1.0, beta: float = 0.5) -> None:
        super().__init__()
        self.depth_radius, self.bias, self.alpha, self.beta = depth_radius, bias, alpha, beta

    def forward(self, x: Tensor) -> Tensor:
        r = self.depth_radius
        sq = F.pad(x.square().unsqueeze(1), (0, 0, 0, 0, r, r))  # N x 1 x (C + 2r) x H x W
        sq_sum = F.avg_pool3d(sq, (2 * r + 1, 1, 1), stride=1).squeeze(1) * (2 * r + 1)  # N x C x H x W
        return x * (self.bias + self.alpha * sq_sum).pow(-self.beta)


def batch_norm2d(channels: int, bn: BatchNormConfig = BatchNormConfig()) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=bn.eps, momentum=round(1 - bn.momentum, 12))  # MindSpore m == torch 1 - m


def batch_norm1d(channels: int, bn: BatchNormConfig = BatchNormConfig()) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=bn.eps, momentum=round(1 - bn.momentum, 12))  # MindSpore m == torch 1 - m
