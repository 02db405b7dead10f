"""The last training transforms, on the device: colour jitter and normalisation of uint8 batches.

The input pipeline (:func:`mindzoo.data.transforms.train_input`) stops at the resized, flipped
crop in uint8 and, where the recipe jitters colours, draws each sample's jitter (the order of the
four adjustments and their factors, as MindSpore's RandomColorAdjust draws them). This stage applies
them in float32 with MindSpore's formulas (:mod:`mindzoo.data.jitter` has the shared definition and
the tolerance against MindSpore's uint8 ops), then normalises as the recipe's Normalize and
HWC2CHW would.
"""

from __future__ import annotations

import torch

from mindzoo.archs import DataConfig
from mindzoo.data import jitter
from mindzoo.data.transforms import normalization


def _gray(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    return (jitter.GRAY[0] * r + jitter.GRAY[1] * g + jitter.GRAY[2] * b).unsqueeze(1)


def _hue(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Shift the hue as MindSpore's AdjustHue does: by trunc(f * 255) of the 256 hue steps of OpenCV's uint8 HSV
    (RGB2HSV_FULL), whose hue and saturation steps are rounded to here too."""
    r, g, b = x.unbind(1)
    high, _ = x.max(dim=1)
    low, _ = x.min(dim=1)
    span = high - low
    safe = torch.where(span > 0, span, torch.ones_like(span))
    h = torch.where(high == r, (g - b) / safe, torch.where(high == g, 2 + (b - r) / safe, 4 + (r - g) / safe))
    h = torch.where(span > 0, h / 6, torch.zeros_like(h))
    h = torch.remainder(torch.round(h * 256) + torch.trunc(f.view(-1, 1, 1) * 255), 256) / 256
    s = torch.where(high > 0, span / torch.where(high > 0, high, torch.ones_like(high)), torch.zeros_like(high))
    s = torch.round(s * 255) / 255
    sector = h * 6
    k = torch.stack([torch.remainder(5 + sector, 6), torch.remainder(3 + sector, 6), torch.remainder(1 + sector, 6)], 1)
    weight = torch.clamp(torch.minimum(k, 4 - k), 0, 1)
    shifted = high.unsqueeze(1) * (1 - s.unsqueeze(1) * weight)
    return torch.where(f == 0, x, shifted)  # a hue factor of exactly 0 (InceptionV4's range): MindSpore skips it


class InputStage:
    """uint8 NHWC (+ float32 jitter rows) → float32 NCHW, normalised, on the batch's device."""

    def __init__(self, cfg: DataConfig, device: torch.device) -> None:
        rescale, mean, std = normalization(cfg)
        self.cfg, self.rescale = cfg, rescale
        self.mean = torch.from_numpy(mean).view(1, 3, 1, 1).to(device)
        self.std = torch.from_numpy(std).view(1, 3, 1, 1).to(device)

    def __call__(self, images: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2).float()
        if params is not None:
            x = self.jitter(x, params.to(x.device))
        if self.rescale is not None:
            x = x * self.rescale
        return (x - self.mean) / self.std

    @staticmethod
    def jitter(x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Each sample's four adjustments in its own order (``params``: :func:`mindzoo.data.jitter.sample` rows).

        Brightness, contrast and saturation all blend the image with a reference (black, its mean grey, its
        per-pixel grey), so one blend per step serves all three; the hue shift is the only other op."""
        order, factors = params[:, :4].long(), params[:, 4:]
        for step in range(4):
            kind = order[:, step].view(-1, 1, 1, 1)
            factor = torch.gather(factors, 1, order[:, step:step + 1]).view(-1, 1, 1, 1)
            gray = _gray(x)
            mean = torch.round(gray.mean(dim=(1, 2, 3), keepdim=True))
            reference = torch.where(kind == 0, torch.zeros_like(gray), torch.where(kind == 1, mean, gray))
            blended = reference * (1 - factor) + x * factor
            x = torch.clamp(torch.where(kind == 3, _hue(x, torch.where(kind == 3, factor, 0.0)), blended), 0, 255)
        return x
