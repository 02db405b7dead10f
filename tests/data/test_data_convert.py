"""Conversion without the object store: determinism, shard layout, image checks and store_size."""

from __future__ import annotations

import hashlib
import io
import shutil

import numpy as np
import pytest
from PIL import Image

from mindzoo.config import DigitsConfig
from mindzoo.data import convert, images, jpeg, sources
from mindzoo.datasets import digits

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("raw") / "tree"
    digits.make(DigitsConfig(format="imagefolder"), root)
    return root


def _jpeg(w, h, quality=90) -> bytes:
    rng = np.random.default_rng(w * h)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(out, "JPEG", quality=quality)
    return out.getvalue()


def test_output_does_not_depend_on_the_worker_count(tree, tmp_path):
    plan = sources.scan(tree)
    settings = convert.ConvertSettings(shard_size=300)
    one = convert.convert(plan, tmp_path / "one", settings, workers=1)
    two = convert.convert(plan, tmp_path / "two", settings, workers=2)
    digest = lambda out, s: hashlib.sha256((out / s.file).read_bytes()).hexdigest()  # noqa: E731
    assert [(s.file, s.rows, digest(tmp_path / "one", s)) for s in one.shards] == [
        (s.file, s.rows, digest(tmp_path / "two", s)) for s in two.shards]
    assert one.rows == 1797 and not one.bad
    train = [s for s in one.shards if s.split == "train"]
    assert len(train) == 8 and {s.file for s in train} == {f"train/train-{i:05d}-of-00008.mindrecord"
                                                            for i in range(8)}
    assert all(len(set(s.labels)) == 10 for s in train)  # shuffled at write time: every shard has every class


def test_shard_counts():
    assert convert.shard_count(0, 2048, 0) == 0
    assert convert.shard_count(100, 2048, 0) == 2  # at least 64 rows per shard for small data
    assert convert.shard_count(5000, 2048, 0) == 8  # ...and up to 8 shards so 8 readers can split it
    assert convert.shard_count(1_281_167, 2048, 0) == 626
    assert convert.shard_count(10, 2048, 16) == 10


def test_page_layout_keeps_padding_small():
    page, header = convert.page_layout([110_000] * 2048)
    assert page >= 2 * 110_000 and (page * 2) / (2048 * 110_000) < 0.05
    assert header >= 1 << 16
    big, _ = convert.page_layout([30_000_000])
    assert big >= 60_000_000


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"plain text", "not an image"),
    (_jpeg(64, 48)[:2000], "truncated"),
    (_jpeg(64, 48)[:300], "truncated header"),
    (b"\xff\xd8\xff\xdb" + bytes(300), "corrupt header"),  # a JPEG signature, then garbage
    (b"GIF89a" + bytes(100), "not an image"),
])
def test_bad_images_are_named_with_a_reason(data, reason):
    for verify in ("decode", "header"):
        with pytest.raises(images.BadImage, match=reason):
            images.inspect(data, verify)


def test_bogus_huffman_table_is_caught_by_the_header_check():
    """MindSpore 2.10's Decode segfaults on this image, so the cheap check must refuse it."""
    broken = bytearray(_jpeg(64, 48))
    at = broken.find(b"\xff\xc4")
    broken[at + 5:at + 21] = b"\xff" * 16  # code counts summing to 4,080 > 256
    for verify in ("header", "decode"):
        with pytest.raises(images.BadImage, match="Huffman|decode failed"):
            images.inspect(bytes(broken), verify)


@pytest.mark.parametrize("damage, reason", [
    (lambda d: d[:2] + b"\xff\xdb\x00\x43\x07" + d[6:], "quantisation table"),  # table index 7
    (lambda d: d[:2] + b"\xff\xda\x00\x02" + d[2:], "scan before the frame header"),
    (lambda d: d[:2] + b"\xff\xe0\xff\xff" + d[6:], "runs past the end"),
])
def test_broken_jpeg_segments(damage, reason):
    jpeg.check(_jpeg(64, 48))
    with pytest.raises(jpeg.HeaderError, match=reason):
        jpeg.check(damage(_jpeg(64, 48)))


def test_png_is_decoded_even_by_the_header_check():
    out = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(out, "PNG")
    broken = bytearray(out.getvalue())
    broken[len(broken) // 2:len(broken) // 2 + 64] = bytes(64)  # corrupt compressed pixels, chunks intact
    with pytest.raises(images.BadImage, match="decode failed"):
        images.inspect(bytes(broken), "header")


def test_store_size_shrinks_large_images_only():
    big, small = _jpeg(500, 375), _jpeg(200, 150)
    info = images.inspect(big, "decode")
    data, shrunk = images.shrink(big, info, 256, 90)
    assert (shrunk.width, shrunk.height, shrunk.resized) == (341, 256, True)
    assert Image.open(io.BytesIO(data)).size == (341, 256)
    same, kept = images.shrink(small, images.inspect(small, "decode"), 256, 90)
    assert same is small and not kept.resized


def test_quarantined_images_are_left_out(tree, tmp_path):
    src = tmp_path / "tree"
    shutil.copytree(tree, src)
    victim = sorted((src / "val").rglob("*.JPEG"))[0]
    victim.write_bytes(victim.read_bytes()[:100])
    result = convert.convert(sources.scan(src), tmp_path / "out", convert.ConvertSettings(), workers=2)
    assert result.rows == 1796
    assert [(split, f) for split, f, _, _ in result.bad] == [("val", victim.relative_to(src).as_posix())]
