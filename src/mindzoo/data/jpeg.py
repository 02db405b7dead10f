"""A structural check of a JPEG's header segments, up to its first scan.

Pillow's header parser skips the Huffman tables, but libjpeg validates them
when decoding starts — and MindSpore 2.10's Decode crashes the whole process
(SIGSEGV) on, for example, a Huffman table whose code counts exceed 256. So the
cheap ``verify="header"`` check walks the segments libjpeg reads before the
first scan and rejects what it would reject: bad segment lengths, bogus
Huffman (DHT) and quantisation (DQT) tables, a frame header (SOF) with no or
too many components or a zero size, and a scan before the frame or with
components or quantisation tables the frame does not define. Missing Huffman
tables are fine: libjpeg-turbo falls back to the standard ones.
"""

from __future__ import annotations

from typing import NamedTuple

_SOF = {0xC0, 0xC1, 0xC2, 0xC9, 0xCA}  # baseline, extended, progressive; Huffman or arithmetic coded
_UNSUPPORTED_SOF = {0xC3, 0xC5, 0xC6, 0xC7, 0xCB, 0xCD, 0xCE, 0xCF}  # lossless and hierarchical processes
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length


class HeaderError(ValueError):
    """The reason a JPEG header would be refused by libjpeg."""


class Frame(NamedTuple):
    width: int
    height: int
    components: int  # 1 grey, 3 YCbCr/RGB, 4 CMYK/YCCK


def check(data: bytes) -> Frame:
    """The frame size, or :class:`HeaderError` unless every segment before the first scan is well formed."""
    if data[:3] != b"\xff\xd8\xff":
        raise HeaderError("not a JPEG (no start-of-image marker)")
    pos, size = 2, len(data)
    frame: tuple[Frame, dict[int, int]] | None = None  # with component id -> quantisation table id
    quant: set[int] = set()
    while pos + 4 <= size:
        if data[pos] != 0xFF:
            raise HeaderError(f"corrupt header: no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF or marker in _STANDALONE:  # fill byte, or a marker without a segment
            pos += 1 if marker == 0xFF else 2
            continue
        if marker == 0xD9:
            raise HeaderError("no image data before the end marker")
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if length < 2:
            raise HeaderError(f"corrupt header: segment 0x{marker:02X} has length {length}")
        if pos + 2 + length > size:
            raise HeaderError(f"truncated header: segment 0x{marker:02X} runs past the end of the file")
        body = data[pos + 4:pos + 2 + length]
        if marker == 0xC4:
            _huffman(body)
        elif marker == 0xDB:
            quant |= _quantisation(body)
        elif marker in _SOF:
            frame = _frame(body)
        elif marker in _UNSUPPORTED_SOF:
            raise HeaderError(f"unsupported JPEG process (SOF 0x{marker:02X}: lossless or hierarchical)")
        elif marker == 0xDA:
            if frame is None:
                raise HeaderError("scan before the frame header")
            _scan(body, frame[1], quant)
            return frame[0]
        pos += 2 + length
    raise HeaderError("truncated header: no scan data")


def _huffman(body: bytes) -> None:
    i = 0
    while i < len(body):
        if i + 17 > len(body):
            raise HeaderError("bogus Huffman table: segment too short")
        klass, index = body[i] >> 4, body[i] & 0x0F
        total = sum(body[i + 1:i + 17])
        if klass > 1 or index > 3 or total > 256 or i + 17 + total > len(body):
            raise HeaderError("bogus Huffman table definition")
        i += 17 + total


def _quantisation(body: bytes) -> set[int]:
    found, i = set(), 0
    while i < len(body):
        precision, index = body[i] >> 4, body[i] & 0x0F
        end = i + 1 + 64 * (2 if precision else 1)
        if precision > 1 or index > 3 or end > len(body):
            raise HeaderError("bogus quantisation table")
        found.add(index)
        i = end
    return found


def _frame(body: bytes) -> tuple[Frame, dict[int, int]]:
    if len(body) < 6:
        raise HeaderError("bogus frame header")
    height, width, count = int.from_bytes(body[1:3], "big"), int.from_bytes(body[3:5], "big"), body[5]
    if body[0] != 8:
        raise HeaderError(f"unsupported JPEG precision of {body[0]} bits (MindSpore decodes 8-bit JPEGs)")
    if not 1 <= count <= 4 or len(body) < 6 + 3 * count:
        raise HeaderError(f"bogus frame header: {count} components")
    if height == 0 or width == 0:
        raise HeaderError("empty image (zero width or height)")
    return Frame(width, height, count), {body[6 + 3 * k]: body[8 + 3 * k] for k in range(count)}


def _scan(body: bytes, frame: dict[int, int], quant: set[int]) -> None:
    count = body[0] if body else 0
    if not 1 <= count <= 4 or len(body) < 1 + 2 * count:
        raise HeaderError("bogus scan header")
    for k in range(count):
        component = body[1 + 2 * k]
        if component not in frame:
            raise HeaderError(f"scan names component {component}, which the frame does not define")
    missing = sorted(set(frame.values()) - quant)
    if missing:
        raise HeaderError(f"quantisation table {missing[0]} is used but never defined")
