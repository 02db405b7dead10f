"""Per-image work done by conversion workers: check, measure, optionally shrink, encode.

Checking is the reason preprocessing exists: MindSpore's decoder stops a
training run on a broken image (and silently accepts some truncated JPEGs),
so every image is opened here first.

- ``verify="header"`` (the default): the header is parsed, a JPEG's segments
  are checked the way libjpeg checks them (:mod:`.jpeg`; MindSpore crashes on
  some bad tables) and it must end with its end-of-image marker. That catches
  truncated files, non-images and broken headers at a fraction of a decode's
  cost. PNG and BMP files (rare in photo datasets) are still decoded fully.
- ``verify="decode"``: every image is decoded; JPEGs with libjpeg's DCT
  scaling (1/8 size), which still parses the whole entropy-coded stream, at
  about half the cost of a full decode. Corrupt coefficient data that libjpeg
  only warns about (grey blocks) passes either check, as it passes MindSpore.

Either way an image above ``max_pixels`` (width x height, read from the header
before any decoding) is refused as too large, and Pillow's
``DecompressionBombError`` is a refusal too, never a crashed worker: a
200-Mpx image would take GBs in every training reader that decodes it.
"""

from __future__ import annotations

import io
from typing import Any, NamedTuple

from mindzoo.data import jpeg

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp")  # what MindSpore's Decode reads
_DECODABLE = {"PNG", "BMP"}  # besides JPEG, which is checked by mindzoo.data.jpeg
_JPEG_MODES = {1: "L", 3: "RGB", 4: "CMYK"}
_EOI_WINDOW = 1024  # tolerate a little trailing padding after the JPEG end-of-image marker


class BadImage(Exception):
    """The image cannot be used; the message is the reason shown in the report."""


class ImageInfo(NamedTuple):
    width: int
    height: int
    mode: str  # PIL mode of the stored image: RGB, L, CMYK, ...
    format: str
    resized: bool  # re-encoded smaller for store_size


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def inspect(data: bytes, verify: str, max_pixels: int = 0) -> ImageInfo:
    """Check ``data``; raise :class:`BadImage` with a short reason. ``max_pixels`` 0: no size limit."""
    if not data:
        raise BadImage("empty file")
    if data[:3] != b"\xff\xd8\xff":
        return _inspect_other(data, max_pixels)
    try:
        frame = jpeg.check(data)  # no Pillow needed for a JPEG's size: its frame header has it
    except jpeg.HeaderError as err:
        raise BadImage(str(err)) from None
    check_size(frame.width, frame.height, max_pixels)
    if data.rfind(b"\xff\xd9", max(0, len(data) - _EOI_WINDOW)) < 0:
        raise BadImage("truncated (no JPEG end-of-image marker)")
    if verify == "decode":
        img = _open(data)
        img.draft("RGB", (1, 1))  # smallest DCT scale: parses every coefficient, skips most IDCT work
        _load(img)
    return ImageInfo(frame.width, frame.height, _JPEG_MODES.get(frame.components, "?"), "JPEG", False)


def check_size(width: int, height: int, max_pixels: int) -> None:
    if max_pixels and width * height > max_pixels:
        raise BadImage(f"too large: {width}x{height} = {width * height:,} pixels, above the "
                       f"--max-pixels limit of {max_pixels:,}")


def _inspect_other(data: bytes, max_pixels: int) -> ImageInfo:
    """PNG and BMP: always decoded fully (they are rare in photo datasets, and cheap to decode)."""
    img = _open(data)
    if img.format not in _DECODABLE:
        raise BadImage(f"{img.format} content, which MindSpore cannot decode")
    check_size(img.width, img.height, max_pixels)  # before the decode
    if img.format == "PNG" and data.rfind(b"IEND", max(0, len(data) - _EOI_WINDOW)) < 0:
        raise BadImage("truncated (no PNG end chunk)")
    _load(img)
    return ImageInfo(img.width, img.height, img.mode, img.format, False)


def _open(data: bytes) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:
        raise BadImage(f"too large (Pillow: decompression bomb): {_short(err)}") from None
    except UnidentifiedImageError:
        raise BadImage("not an image (unrecognised content)") from None
    except (OSError, ValueError, SyntaxError) as err:
        what = "truncated" if "truncat" in str(err).lower() else "unreadable"
        raise BadImage(f"{what} header: {_short(err)}") from None


def _load(img: Any) -> None:
    from PIL import Image

    try:
        img.load()
    except Image.DecompressionBombError as err:
        raise BadImage(f"too large (Pillow: decompression bomb): {_short(err)}") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise BadImage(f"decode failed: {_short(err)}") from None


def shrink(data: bytes, info: ImageInfo, store_size: int, quality: int) -> tuple[bytes, ImageInfo]:
    """Re-encode as an RGB JPEG whose short side is ``store_size`` (never enlarges)."""
    from PIL import Image

    short = min(info.width, info.height)
    if store_size <= 0 or short <= store_size:
        return data, info
    scale = store_size / short
    size = (max(1, round(info.width * scale)), max(1, round(info.height * scale)))
    img = _open(data)
    img.draft("RGB", size)  # DCT-domain reduction to >= size; the resize below does the rest
    img = img.convert("RGB").resize(size, Image.BILINEAR)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue(), ImageInfo(size[0], size[1], "RGB", "JPEG", True)


def png_from_planes(record: bytes) -> bytes:
    """A lossless PNG of one CIFAR-10 record's 3x32x32 channel planes (decodes pixel-exact)."""
    import numpy as np
    from PIL import Image

    pixels = np.frombuffer(record, np.uint8).reshape(3, 32, 32).transpose(1, 2, 0)
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), "RGB").save(out, "PNG", compress_level=1)
    return out.getvalue()


def _short(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0][:160]
