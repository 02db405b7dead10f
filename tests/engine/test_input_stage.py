"""The engines' device input stages against the CPU ops they replace: MindSpore's Normalize + HWC2CHW
(exactly, up to float32 rounding) and RandomColorAdjust's adjustments (MindSpore's uint8 ops, within
their own rounding), for both engines, and both engines against each other."""

from __future__ import annotations

import random

import numpy as np
import pytest

from mindzoo.archs import DATA_CONFIGS, ColorJitter, get_data_config
from mindzoo.data import jitter, transforms

pytestmark = pytest.mark.runtime


def photos(count: int = 6, size: int = 40) -> np.ndarray:
    """Smooth colour fields with noise: saturated and grey regions, as photos have."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(count):
        phase = rng.uniform(0, 6, 3)
        base = 127 + 120 * np.sin(np.stack([x * 3 + phase[0], y * 4 + phase[1], (x + y) * 2 + phase[2]], -1))
        out.append(np.clip(base + rng.normal(0, 12, base.shape), 0, 255))
    return np.asarray(out, np.uint8)


def torch_stage(images: np.ndarray, rows: np.ndarray | None, cfg) -> np.ndarray:
    import torch

    from mindzoo.engine.torch.input_stage import InputStage

    stage = InputStage(cfg, torch.device("cpu"))
    return stage(torch.from_numpy(images), None if rows is None else torch.from_numpy(rows)).numpy()


def mindspore_stage(images: np.ndarray, rows: np.ndarray | None, cfg) -> np.ndarray:
    import mindspore as ms

    from mindzoo.engine.mindspore.backend import DeviceInput

    out = DeviceInput(cfg)(ms.Tensor(images), None if rows is None else ms.Tensor(rows))
    return out.asnumpy()


STAGES = {"torch": torch_stage, "mindspore": mindspore_stage}


@pytest.mark.parametrize("engine", sorted(STAGES))
@pytest.mark.parametrize("name", ["resnet50_bam", "inception_v4"])  # Normalize(mean*255) and Rescale+Normalize
def test_normalisation_matches_the_cpu_ops(engine, name):
    cfg = get_data_config(name)
    images = photos()
    cpu = np.stack([np.asarray(_apply(transforms.normalize_ops(cfg), image)) for image in images])
    assert np.allclose(transforms.normalize_batch(images, cfg), cpu, atol=1e-5)
    out = STAGES[engine](images, None, cfg)
    assert out.dtype == np.float32 and out.shape == cpu.shape
    assert np.allclose(out, cpu, atol=1e-5)


def _apply(ops, image):
    for op in ops:
        image = op(image)
    return image


def single(kind: int, factor: float) -> np.ndarray:
    row = np.asarray([kind, *[k for k in range(4) if k != kind], 1, 1, 1, 0], np.float32)
    row[4 + kind] = factor
    return row


@pytest.mark.parametrize("engine", sorted(STAGES))
def test_each_adjustment_matches_mindspores_uint8_op(engine):
    """Brightness, contrast and saturation agree to MindSpore's rounding to uint8; hue to the 256 steps of
    OpenCV's uint8 HSV, which the float stage does not have."""
    cfg, images = get_data_config("resnet50_bam"), photos()
    identity = np.zeros((len(images), jitter.WIDTH), np.float32)
    identity[:, :4], identity[:, 4:7] = [0, 1, 2, 3], 1.0
    plain = STAGES[engine](images, None, cfg)
    assert np.allclose(STAGES[engine](images, identity, cfg), plain, atol=1e-5)
    for kind, factor, worst in [(0, 1.3, 0.51), (0, 0.65, 0.51), (1, 1.35, 0.51), (1, 0.7, 0.51),
                                (2, 1.4, 0.61), (2, 0.6, 0.61), (3, 0.08, 12), (3, -0.1, 12)]:
        rows = np.stack([single(kind, factor)] * len(images))
        ours = _pixels(STAGES[engine](images, rows, cfg), cfg)
        theirs = np.stack([jitter.reference(image, rows[0]) for image in images]).astype(np.float32)
        error = np.abs(ours - theirs)
        assert error.max() <= worst and error.mean() <= 1.0, (jitter.KINDS[kind], factor, error.max(), error.mean())


@pytest.mark.parametrize("engine", sorted(STAGES))
def test_random_jitter_rows_match_mindspores_ops_in_their_order(engine):
    cfg, images = get_data_config("resnet50_bam"), photos(12)
    rows = np.stack([jitter.sample(ColorJitter(0.4, 0.4, 0.4, 0.1), random.Random(i)) for i in range(12)])
    ours = _pixels(STAGES[engine](images, rows, cfg), cfg)
    theirs = np.stack([jitter.reference(image, row) for image, row in zip(images, rows)]).astype(np.float32)
    assert np.abs(ours - theirs).mean() <= jitter.TOLERANCE


def test_both_engines_apply_the_same_stage():
    cfg, images = get_data_config("resnet50_bam"), photos(12)
    rows = np.stack([jitter.sample(ColorJitter(0.4, 0.4, 0.4, 0.1), random.Random(i)) for i in range(12)])
    assert np.allclose(torch_stage(images, rows, cfg), mindspore_stage(images, rows, cfg), atol=2e-3)


def test_the_mindspore_stage_compiles_in_graph_mode():
    import mindspore as ms

    cfg, images = get_data_config("resnet50_bam"), photos(4)
    rows = np.stack([jitter.sample(ColorJitter(0.4, 0.4, 0.4, 0.1), random.Random(i)) for i in range(4)])
    eager = mindspore_stage(images, rows, cfg)
    mode = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        graph = mindspore_stage(images, rows, cfg)
    finally:
        ms.set_context(mode=mode)
    assert np.allclose(graph, eager, atol=1e-4)


def test_float_batches_pass_through():
    import mindspore as ms

    from mindzoo.engine.mindspore.backend import DeviceInput

    batch = np.random.default_rng(0).random((2, 3, 8, 8)).astype(np.float32)
    assert np.array_equal(DeviceInput(get_data_config("zfnet"))(ms.Tensor(batch)).asnumpy(), batch)


def test_every_recipe_normalises_with_its_constants():
    for name, cfg in DATA_CONFIGS.items():
        rescale, mean, std = transforms.normalization(cfg)
        assert (rescale is None) == (cfg.normalize == "uint8"), name
        assert mean.shape == std.shape == (3,) and (std > 0).all(), name


def _pixels(normalised: np.ndarray, cfg) -> np.ndarray:
    """Back from a normalised NCHW batch to pixel values NHWC, to compare with uint8 images."""
    rescale, mean, std = transforms.normalization(cfg)
    x = normalised.transpose(0, 2, 3, 1) * std + mean
    return x / rescale if rescale is not None else x
