"""mindzoo's training batches against MindSpore's own ops: the same crop boxes (in distribution), the same
pixels for a box, the same jitter draws, and deterministic per sample whatever the worker count."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image

from mindzoo.archs import DATA_CONFIGS, ColorJitter, get_data_config
from mindzoo.data import cropdecode, jitter, transforms
from mindzoo.data.trainbatch import TrainBatch

pytestmark = pytest.mark.runtime

SCALE, RATIO = (0.08, 1.0), (0.75, 1.333)


def jpeg(width: int, height: int, *, mode: str = "RGB", subsampling: int = 2, seed: int = 0,
         progressive: bool = False) -> bytes:
    """A noisy gradient (chroma detail at every column, where crop edges would show) as JPEG bytes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x * y) % 256], -1)
    pixels = np.clip(pixels + rng.normal(0, 30, pixels.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(out, "JPEG", quality=90, subsampling=subsampling,
                                               progressive=progressive)
    return out.getvalue()


def full_decode(data: bytes) -> np.ndarray:
    import mindspore.dataset.vision as vision

    return vision.Decode()(np.frombuffer(data, np.uint8))


def test_the_native_crop_decoder_is_built():
    """`make setup` and the images build it (setup.py); without it training falls back, slower."""
    assert cropdecode.decoder() == "libjpeg-turbo"


@pytest.mark.parametrize(("width", "height", "mode", "subsampling", "progressive"), [
    (333, 500, "RGB", 2, False), (500, 375, "RGB", 0, False), (257, 131, "RGB", 1, False), (120, 97, "L", 0, False),
    (211, 150, "RGB", 2, True)])
def test_a_decoded_box_is_exactly_that_box_of_the_full_decode(width, height, mode, subsampling, progressive):
    data = jpeg(width, height, mode=mode, subsampling=subsampling, progressive=progressive)
    whole = full_decode(data)
    assert cropdecode.jpeg_size(data) == (width, height)
    rng = random.Random(1)
    boxes = [cropdecode.crop_box(width, height, SCALE, RATIO, rng) for _ in range(40)]
    boxes += [(0, 0, width, height), (width - 1, height - 1, 1, 1), (1, 0, width - 2, 1), (0, 7, 3, height - 7)]
    for x, y, w, h in boxes:
        assert np.array_equal(cropdecode.decode_crop(data, x, y, w, h), whole[y:y + h, x:x + w]), (x, y, w, h)


def test_what_the_crop_decoder_refuses():
    cmyk = io.BytesIO()
    Image.new("CMYK", (40, 30), (10, 20, 30, 40)).save(cmyk, "JPEG")
    png = io.BytesIO()
    Image.new("RGB", (40, 30)).save(png, "PNG")
    assert cropdecode.jpeg_size(cmyk.getvalue()) is None and cropdecode.jpeg_size(png.getvalue()) is None
    with pytest.raises(ValueError, match="cannot decode JPEG: .*outside the 40x30 image"):
        cropdecode.decode_crop(jpeg(40, 30), 30, 0, 20, 10)
    with pytest.raises(ValueError, match="cannot decode JPEG"):
        cropdecode.decode_crop(b"\xff\xd8 not a jpeg", 0, 0, 1, 1)


def mindspore_boxes(width: int, height: int, count: int, scale=SCALE) -> np.ndarray:
    """(x, y, w, h) that MindSpore's RandomResizedCrop picked, read back from a coordinate image: pixel (y, x)
    holds (x, y), and a nearest-neighbour resize to 256x256 (at least the image) keeps both corners."""
    import mindspore.dataset as ds
    import mindspore.dataset.vision as vision

    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x, y, np.zeros_like(x)], -1).astype(np.uint8)
    ds.config.set_seed(5)
    data = ds.NumpySlicesDataset({"image": np.repeat(image[None], count, 0)}, shuffle=False)
    data = data.map(vision.RandomResizedCrop(256, scale=scale, ratio=RATIO, interpolation=vision.Inter.NEAREST),
                    input_columns="image")
    corners = [(int(o[0, 0, 0]), int(o[0, 0, 1]), int(o[-1, -1, 0]), int(o[-1, -1, 1]))
               for (o,) in data.create_tuple_iterator(output_numpy=True)]
    return np.asarray([(x0, y0, x1 - x0 + 1, y1 - y0 + 1) for x0, y0, x1, y1 in corners])


def ks(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic."""
    grid = np.union1d(a, b)
    return float(np.max(np.abs(np.searchsorted(np.sort(a), grid, "right") / len(a)
                               - np.searchsorted(np.sort(b), grid, "right") / len(b))))


def test_crop_boxes_follow_mindspores_distribution():
    width, height, count = 200, 150, 3000
    theirs = mindspore_boxes(width, height, count)
    rng = random.Random(3)
    ours = np.asarray([cropdecode.crop_box(width, height, SCALE, RATIO, rng) for _ in range(count)])
    other = np.asarray([cropdecode.crop_box(width, height, (0.25, 1.0), RATIO, rng) for _ in range(count)])
    critical = 1.95 * np.sqrt(2 / count)  # alpha = 0.001
    for column, name in enumerate(("x", "y", "w", "h")):
        assert ks(ours[:, column], theirs[:, column]) < critical, name
    # The comparison has teeth: another scale range is told apart.
    assert ks(other[:, 2], theirs[:, 2]) > critical


def test_crop_box_rounds_and_falls_back_as_mindspore_does():
    class Fixed(random.Random):
        def __init__(self, values):
            super().__init__(0)
            self.values = list(values)

        def uniform(self, a, b):
            return self.values.pop(0)

    # area 0.5 of 100x100, aspect e^0 = 1 → round(sqrt(5000)) = 71 (std::round), then randint for x and y.
    x, y, w, h = cropdecode.crop_box(100, 100, SCALE, RATIO, Fixed([0.5, 0.0]))
    assert (w, h) == (71, 71) and 0 <= x <= 29 and 0 <= y <= 29
    # Ten boxes too big for a 1000x10 strip: the centred fallback clamps the aspect to the upper ratio.
    assert cropdecode.crop_box(1000, 10, SCALE, RATIO, Fixed([1.0, np.log(1.333)] * 10)) == (494, 0, 13, 10)  # round(493.5) = 494


def test_jitter_rows_draw_what_random_color_adjust_draws():
    j = ColorJitter(0.4, 0.4, 0.4, 0.1)
    rows = np.stack([jitter.sample(j, random.Random(i)) for i in range(2000)])
    orders = {tuple(r[:4].astype(int)) for r in rows}
    assert len(orders) == 24 and all(sorted(o) == [0, 1, 2, 3] for o in orders)
    for kind, (lo, hi) in enumerate(jitter.ranges(j)):
        factors = rows[:, 4 + kind]
        assert lo <= factors.min() < lo + 0.01 and hi - 0.01 < factors.max() <= hi
    # The ranges are the ones MindSpore's op derives from the same config.
    import mindspore.dataset.vision as vision

    op = vision.RandomColorAdjust(0.4, 0.4, 0.4, 0.1)
    assert [op.brightness, op.contrast, op.saturation, op.hue] == [pytest.approx(r) for r in jitter.ranges(j)]
    still = jitter.sample(ColorJitter(0.4, 0.4, 0.4, 0.0), random.Random(0))
    assert still[7] == 0.0  # InceptionV4: hue 0 stays exactly 0


CROPPED = sorted(name for name, cfg in DATA_CONFIGS.items() if cfg.train.kind == "random_resized_crop")


@pytest.mark.parametrize("name", CROPPED)
def test_a_batch_is_the_recipes_ops_on_each_sample(name):
    """Every image of a batch is MindSpore's Decode → box → Resize → flip for that sample's draws."""
    import mindspore.dataset.vision as vision

    cfg = get_data_config(name).at_size(64)
    extra = None
    build = transforms.train_batch(cfg, extra, seed=11)
    assert isinstance(build, TrainBatch)
    images = [np.frombuffer(jpeg(90 + 7 * i, 70 + 5 * i, seed=i), np.uint8) for i in range(6)]
    ids = [np.array(f"train/n0{i}/img{i}.JPEG") for i in range(6)]
    out = build(images, ids, [np.int32(i) for i in range(6)], None)
    on_cpu = transforms.train_batch(cfg, extra, seed=11, device_jitter=False)(images, ids, [np.int32(0)] * 6, None)
    assert len(on_cpu) == 2
    assert out[0].shape == (6, 64, 64, 3) and out[0].dtype == np.uint8 and list(out[1]) == list(range(6))
    assert len(out) == len(build.columns) == (3 if cfg.train.color_jitter else 2)
    inter = transforms._inter(cfg)
    for i, (image, file_id) in enumerate(zip(images, ids)):
        rng = build.rng(file_id)
        whole = vision.Decode()(image)
        x, y, w, h = cropdecode.crop_box(whole.shape[1], whole.shape[0], cfg.train.scale, cfg.train.ratio, rng)
        expected = vision.Resize((64, 64), inter)(whole[y:y + h, x:x + w])
        expected = expected[:, ::-1] if rng.random() < cfg.train.hflip else expected
        assert np.array_equal(out[0][i], expected)
        if cfg.train.color_jitter:
            row = jitter.sample(cfg.train.color_jitter, rng)
            assert np.array_equal(out[2][i], row)
            # Training on the CPU: the same draws, applied here with MindSpore's ops.
            assert np.array_equal(on_cpu[0][i], jitter.reference(np.ascontiguousarray(expected), row))
        else:
            assert np.array_equal(on_cpu[0][i], expected)


def test_images_the_crop_decoder_refuses_are_decoded_whole_by_mindspore():
    """A CMYK JPEG and a PNG under a .JPEG name (both occur in ImageNet's train set) still give the box."""
    import mindspore.dataset.vision as vision

    cmyk, png = io.BytesIO(), io.BytesIO()
    Image.open(io.BytesIO(jpeg(90, 70))).convert("CMYK").save(cmyk, "JPEG", quality=95)
    Image.open(io.BytesIO(jpeg(90, 70, seed=1))).save(png, "PNG")
    cfg = get_data_config("genet_res50").at_size(32)
    build = transforms.train_batch(cfg, None, seed=2)
    images = [np.frombuffer(b.getvalue(), np.uint8) for b in (cmyk, png)]
    ids = [np.array("n01/cmyk.JPEG"), np.array("n01/png.JPEG")]
    out = build(images, ids, [np.int32(0), np.int32(1)], None)
    for i, (image, file_id) in enumerate(zip(images, ids)):
        rng = build.rng(file_id)
        whole = vision.Decode()(image)
        x, y, w, h = cropdecode.crop_box(whole.shape[1], whole.shape[0], cfg.train.scale, cfg.train.ratio, rng)
        expected = vision.Resize((32, 32), transforms._inter(cfg))(whole[y:y + h, x:x + w])
        assert np.array_equal(out[0][i], expected[:, ::-1] if rng.random() < cfg.train.hflip else expected)


def test_sppnet_extra_size_and_who_keeps_mindspores_ops():
    spp = get_data_config("sppnet").at_size(64)
    build = transforms.train_batch(get_data_config("sppnet"), 180, seed=0)
    out = build([np.frombuffer(jpeg(300, 260), np.uint8)], [np.array("a.JPEG")], [np.int32(0)], None)
    assert out[0].shape == (1, 180, 180, 3)
    assert transforms.train_batch(spp, None, 0).size == 64
    assert transforms.train_batch(get_data_config("googlenet_cifar10"), None, 0) is None  # padded crop
    assert [type(op).__name__ for op in transforms.train_map_ops(get_data_config("googlenet_cifar10"))] == [
        "Decode", "RandomCrop", "RandomHorizontalFlip", "Resize"]


def test_each_sample_draws_the_same_whatever_the_batch_and_worker():
    build = transforms.train_batch(get_data_config("resnet50_bam").at_size(48), None, seed=3)
    images = [np.frombuffer(jpeg(120, 90, seed=i), np.uint8) for i in range(4)]
    ids = [np.array(f"s{i}") for i in range(4)]
    together = build(images, ids, [np.int32(0)] * 4, None)
    alone = [build([im], [i], [np.int32(0)], None) for im, i in zip(images, ids)]
    assert all(np.array_equal(together[0][k], alone[k][0][0]) for k in range(4))
    assert all(np.array_equal(together[2][k], alone[k][2][0]) for k in range(4))
    other_seed = transforms.train_batch(get_data_config("resnet50_bam").at_size(48), None, seed=4)
    assert not np.array_equal(other_seed(images, ids, [np.int32(0)] * 4, None)[2], together[2])
