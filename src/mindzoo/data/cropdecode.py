"""A random-resized crop's box, and the box decoded straight from the JPEG bytes.

Every ImageNet recipe starts training with MindSpore's fused ``RandomCropDecodeResize``: pick a
box, decode only the box, resize it. :mod:`mindzoo.data.trainbatch` does the same with these parts:

- :func:`crop_box` samples the box exactly as MindSpore's ``RandomCropAndResizeOp::GetCropBox``
  does (area fraction uniform in ``scale``, aspect ratio log-uniform in ``ratio``, up to 10
  tries, then a centred crop clamped to ``ratio``; the same formulas and rounding), so the
  recipe's crop distribution is unchanged;
- :func:`decode_crop` decodes the box with the system's libjpeg-turbo (``jpegcrop.c``, SIMD:
  about 1.5x faster than the decoder MindSpore bundles) to exactly the pixels a full decode
  gives there.

Where the native library is missing (a package built without a compiler), :func:`decoder` says
so and training keeps MindSpore's fused op.
"""

from __future__ import annotations

import ctypes
import importlib.util
import math
import random
from functools import lru_cache

import numpy as np

MAX_TRIES = 10  # MindSpore's RandomResizedCrop default (max_attempts)


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL | None:
    spec = importlib.util.find_spec("mindzoo.data._jpegcrop")
    if spec is None or not spec.origin:
        return None
    lib = ctypes.CDLL(spec.origin)  # ctypes releases the GIL for each call: worker threads decode in parallel
    size_t, int_p = ctypes.c_ulong, ctypes.POINTER(ctypes.c_int)
    lib.mz_jpeg_size.argtypes = [ctypes.c_char_p, size_t, int_p, int_p, ctypes.c_char_p]
    lib.mz_jpeg_crop.argtypes = [ctypes.c_char_p, size_t, *[ctypes.c_int] * 4, ctypes.c_void_p, ctypes.c_char_p]
    return lib


def decoder() -> str:
    """Which crop decoder training uses: ``libjpeg-turbo`` (this module) or ``mindspore`` (the fused op)."""
    return "libjpeg-turbo" if _library() is not None else "mindspore"


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a JPEG the crop decoder can take, else None."""
    lib, width, height, message = _library(), ctypes.c_int(), ctypes.c_int(), ctypes.create_string_buffer(200)
    if lib is None or lib.mz_jpeg_size(data, len(data), ctypes.byref(width), ctypes.byref(height), message) != 1:
        return None
    return width.value, height.value


def decode_crop(data: bytes, x: int, y: int, width: int, height: int) -> np.ndarray:
    """RGB uint8 (height, width, 3) of the box at (x, y); ValueError with libjpeg's message on bad data."""
    lib, message = _library(), ctypes.create_string_buffer(200)
    if lib is None:
        raise RuntimeError("mindzoo's JPEG crop decoder is not built (see setup.py)")
    out = np.empty((height, width, 3), np.uint8)
    if lib.mz_jpeg_crop(data, len(data), x, y, width, height, out.ctypes.data, message) != 0:
        raise ValueError(f"cannot decode JPEG: {message.value.decode(errors='replace')}")
    return out


def crop_box(width: int, height: int, scale: tuple[float, float], ratio: tuple[float, float],
             rng: random.Random) -> tuple[int, int, int, int]:
    """(x, y, w, h) as MindSpore's RandomCropAndResizeOp::GetCropBox picks it (same formulas and rounding)."""
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for _ in range(MAX_TRIES):
        area = width * height * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = max(1, _round(math.sqrt(area * aspect)))
        h = max(1, _round(w / aspect))
        if w <= width and h <= height:
            return rng.randint(0, width - w), rng.randint(0, height - h), w, h
    if width / height < ratio[0]:
        w, h = width, _round(width / ratio[0])
    elif width / height > ratio[1]:
        w, h = _round(height * ratio[1]), height
    else:
        w, h = width, height
    w, h = max(1, w), max(1, h)
    return _round((width - w) / 2), _round((height - h) / 2), w, h


def _round(value: float) -> int:
    """C++'s std::round (halves away from zero), not Python's banker's rounding."""
    return int(math.floor(value + 0.5)) if value >= 0 else -int(math.floor(-value + 0.5))
