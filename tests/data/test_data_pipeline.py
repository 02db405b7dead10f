"""Input pipelines: each recipe's transforms from its data config, sharding, determinism, eval counts."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mindzoo.archs import DATA_CONFIGS, DataConfig, EvalTransform, get_data_config
from mindzoo.config import DigitsConfig, PreprocessConfig
from mindzoo.data import jitter, prepare, transforms
from mindzoo.data.pipeline import create_dataset
from mindzoo.datasets import digits
from mindzoo.errors import ConfigError, DataError

pytestmark = pytest.mark.runtime


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The digits in both layouts, converted locally (no object store needed)."""
    root = tmp_path_factory.mktemp("data")
    out = {}
    for fmt in ("cifar10", "imagefolder"):
        digits.make(DigitsConfig(format=fmt), root / "raw" / fmt)
        prepare.convert_local(PreprocessConfig(source=str(root / "raw" / fmt), workers=2), root / fmt)
        out[fmt] = root / fmt
    out["raw"] = root / "raw"
    return out


def names(ops):
    return [type(op).__name__ for op in ops]


def test_train_ops_follow_each_recipe():
    tail = ["Normalize", "HWC2CHW"]
    assert names(transforms.train_ops(get_data_config("zfnet"))) == [
        "RandomCropDecodeResize", "RandomHorizontalFlip", *tail]
    assert names(transforms.train_ops(get_data_config("sppnet"), 180)) == [
        "RandomCropDecodeResize", "Resize", "RandomHorizontalFlip", "RandomColorAdjust", *tail]
    assert names(transforms.train_ops(get_data_config("resnet50_bam"))) == [
        "RandomCropDecodeResize", "RandomHorizontalFlip", "RandomColorAdjust", *tail]
    assert names(transforms.train_ops(get_data_config("genet_res50"))) == [
        "RandomCropDecodeResize", "RandomHorizontalFlip", *tail]
    assert names(transforms.train_ops(get_data_config("googlenet_cifar10"))) == [
        "Decode", "RandomCrop", "RandomHorizontalFlip", "Resize", "Rescale", *tail]
    assert names(transforms.train_ops(get_data_config("inception_v4"))) == [
        "RandomCropDecodeResize", "RandomHorizontalFlip", "RandomColorAdjust", "Rescale", *tail]


def test_eval_ops_and_normalisation_constants():
    ops = transforms.eval_ops(get_data_config("resnet50_bam"))
    assert names(ops) == ["Decode", "Resize", "CenterCrop", "Normalize", "HWC2CHW"]
    assert ops[1].py_size == 256 and ops[2].size == (224, 224)  # short side 256, crop 224
    assert np.allclose(ops[3].mean, [123.675, 116.28, 103.53]) and np.allclose(ops[3].std, [58.395, 57.12, 57.375])
    assert transforms.eval_ops(get_data_config("zfnet"))[1].py_size == (256, 256)  # eval.py's square resize
    v4 = transforms.eval_ops(get_data_config("inception_v4"))
    assert v4[1].py_size == 299 and v4[2].size == (299, 299) and names(v4)[3] == "Rescale"
    assert np.allclose(v4[4].mean, [0.485, 0.456, 0.406])
    crop, _, jitter = transforms.train_ops(get_data_config("inception_v4"))[:3]
    assert crop.size == (299, 299) and crop.scale == (0.08, 1.0) and crop.ratio == (0.75, 1.333)
    assert jitter.brightness == (0.6, 1.4) and jitter.hue == (0.0, 0.0)  # §5.2: hue 0


def test_sizes_for_sppnet_multi_size_and_small_runs():
    spp = get_data_config("sppnet")
    assert transforms.sized(spp, 180) == (spp, 180)
    small, extra = transforms.sized(get_data_config("resnet50_bam"), 64)
    assert extra is None and small.input_size == 64 and small.eval.crop_size == 64


@pytest.mark.parametrize("name", sorted(DATA_CONFIGS))
def test_every_data_config_gives_batches_of_its_input_size(converted, name):
    cfg = get_data_config(name)
    fmt = "cifar10" if cfg.dataset == "cifar10" else "imagefolder"
    evaluation = next(create_dataset(converted[fmt], "val", name, 4, train=False).create_dict_iterator(output_numpy=True))
    assert evaluation["image"].shape == (4, 3, cfg.input_size, cfg.input_size)
    assert evaluation["image"].dtype == np.float32 and evaluation["label"].dtype == np.int32
    # Training batches stop before the normalisation (and the colour jitter): the engine finishes them.
    train = next(create_dataset(converted[fmt], "train", name, 4, train=True, seed=1)
                 .create_dict_iterator(output_numpy=True))
    assert train["image"].shape == (4, cfg.input_size, cfg.input_size, 3) and train["image"].dtype == np.uint8
    assert train["label"].dtype == np.int32
    jittered = cfg.train.color_jitter is not None and cfg.train.kind == "random_resized_crop"
    assert sorted(train) == sorted(["image", "label", *(["jitter"] if jittered else [])])
    if jittered:
        assert train["jitter"].shape == (4, jitter.WIDTH) and train["jitter"].dtype == np.float32


def test_eval_normalisation_is_exact(converted):
    """With an identity geometry the output is exactly (pixel - mean) / std, channel-first, in file order."""
    val = np.frombuffer((converted["raw"] / "cifar10" / "test_batch.bin").read_bytes(), np.uint8).reshape(-1, 3073)
    pixels = val[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32)
    for normalize in ("uint8", "rescale"):
        cfg = DataConfig("exact", "cifar10", 32, normalize=normalize, eval=EvalTransform(32, "square", 32))
        data = create_dataset(converted["cifar10"], "val", cfg, 100, train=False)
        images = np.concatenate([b["image"] for b in data.create_dict_iterator(output_numpy=True)])
        labels = np.concatenate([b["label"] for b in data.create_dict_iterator(output_numpy=True)])
        mean, std = np.array(cfg.mean)[:, None, None], np.array(cfg.std)[:, None, None]
        assert np.array_equal(labels, val[:, 0])
        assert np.allclose(images, (pixels / 255.0 - mean) / std, atol=1e-4)


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_eval_counts_every_image_once_across_ranks(converted, world_size):
    cfg = get_data_config("googlenet_cifar10").at_size(32)
    labels = []
    for rank in range(world_size):
        data = create_dataset(converted["cifar10"], "val", cfg, 64, train=False, rank=rank, world_size=world_size)
        labels += [int(x) for b in data.create_dict_iterator(output_numpy=True) for x in b["label"]]
    expected = np.frombuffer((converted["raw"] / "cifar10" / "test_batch.bin").read_bytes(), np.uint8)[::3073]
    assert len(labels) == 359 and sorted(labels) == sorted(expected.tolist())


def test_train_is_sharded_by_rank_and_drops_the_remainder(converted):
    cfg = get_data_config("googlenet_cifar10").at_size(32)
    sizes = [create_dataset(converted["cifar10"], "train", cfg, 100, train=True, rank=r, world_size=2)
             .get_dataset_size() for r in range(2)]
    assert sizes == [7, 7]  # 1,438 / 2 = 719 per rank, 7 full batches of 100


def test_same_seed_same_batches(converted):
    def first_batches(seed):
        data = create_dataset(converted["imagefolder"], "train", "resnet50_bam", 16, train=True, seed=seed,
                              input_size=64, num_parallel_workers=2)
        it = data.create_dict_iterator(output_numpy=True)
        return [next(it) for _ in range(2)]

    a, b, c = first_batches(7), first_batches(7), first_batches(8)
    assert all(np.array_equal(x["image"], y["image"]) and np.array_equal(x["label"], y["label"])
               for x, y in zip(a, b))
    assert not np.array_equal(a[0]["image"], c[0]["image"])


def test_bad_arguments_and_too_small_stored_images(converted, tmp_path):
    with pytest.raises(ConfigError, match="rank: must be in 0..1"):
        create_dataset(converted["cifar10"], "val", "zfnet", 8, train=False, rank=2, world_size=2)
    with pytest.raises(DataError, match="has no 'test' split"):
        create_dataset(converted["cifar10"], "test", "zfnet", 8, train=False)
    with pytest.raises(DataError, match="not a converted dataset"):
        create_dataset(tmp_path, "val", "zfnet", 8, train=False)
    small = prepare.convert_local(PreprocessConfig(source=str(converted["raw"] / "imagefolder"), store_size=128,
                                                   workers=2), tmp_path / "small")
    assert small["settings"]["store_size"] == 128
    with pytest.raises(DataError, match="short side 128 px, less than the 256 px data config zfnet"):
        create_dataset(tmp_path / "small", "val", "zfnet", 8, train=False)
    ok = create_dataset(tmp_path / "small", "val", dataclasses.replace(get_data_config("zfnet")).at_size(64), 8,
                        train=False)
    assert ok.get_dataset_size() == 45
