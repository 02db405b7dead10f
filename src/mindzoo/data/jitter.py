"""A recipe's colour jitter as data: drawn per sample in the input pipeline, applied on the device.

MindSpore's RandomColorAdjust(brightness, contrast, saturation, hue) shuffles the four adjustments
into a random order and draws each factor uniformly: brightness, contrast and saturation in
``[max(0, 1 - v), 1 + v]``, hue in ``[-v, v]`` (turns of the colour wheel). :func:`sample` draws
the same: one row of 8 float32 per image, ``[order (4 indices into KINDS), factors (4, by KIND)]``.
The engines' input stages apply a row in float32 with MindSpore's formulas; :func:`reference`
applies it with MindSpore's own uint8 ops, the definition the stages are tested against. They
differ only by MindSpore's rounding to uint8 after each adjustment (and the 256-step hue of
OpenCV's uint8 HSV): :data:`TOLERANCE`.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from mindzoo.archs import ColorJitter

KINDS = ("brightness", "contrast", "saturation", "hue")
GRAY = (0.299, 0.587, 0.114)  # OpenCV's RGB2GRAY weights, which MindSpore's contrast and saturation use
WIDTH = 8
TOLERANCE = 3.0  # mean |float stage - MindSpore's uint8 ops| in pixel levels, measured ≲ 1 (tests)


def ranges(j: ColorJitter) -> list[tuple[float, float]]:
    """(low, high) of each factor, in KINDS order."""
    return [(max(0.0, 1 - j.brightness), 1 + j.brightness), (max(0.0, 1 - j.contrast), 1 + j.contrast),
            (max(0.0, 1 - j.saturation), 1 + j.saturation), (-j.hue, j.hue)]


def sample(j: ColorJitter, rng: random.Random) -> np.ndarray:
    """One image's jitter row: a uniformly random order of the four adjustments, then their factors."""
    order = list(range(len(KINDS)))
    rng.shuffle(order)
    factors = [rng.uniform(lo, hi) if hi > lo else lo for lo, hi in ranges(j)]
    return np.asarray([*order, *factors], np.float32)


def reference(image: np.ndarray, row: np.ndarray) -> np.ndarray:
    """``image`` (uint8 HWC) adjusted by ``row`` with MindSpore's fixed-factor ops, in the row's order."""
    import mindspore.dataset.vision as vision

    ops: dict[int, Any] = {0: vision.AdjustBrightness, 1: vision.AdjustContrast, 2: vision.AdjustSaturation,
                           3: vision.AdjustHue}
    identity = (1.0, 1.0, 1.0, 0.0)
    for kind in row[:4].astype(int):
        factor = float(row[4 + kind])
        if factor != identity[kind]:
            image = ops[kind](factor)(image)
    return image
