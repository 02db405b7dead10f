"""Architecture and data configs match the facts sheet and validate their values."""

import pytest

pytestmark = pytest.mark.runtime

import dataclasses  # noqa: E402

from mindzoo import archs  # noqa: E402
from mindzoo.archs import (  # noqa: E402
    DATA_CONFIGS, MODELS, ColorJitter, DataConfig, EvalTransform, TrainTransform, get_data_config, get_model_config,
)
from mindzoo.errors import ConfigError  # noqa: E402

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CIFAR = ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))

# name: (input size, normalize, mean/std, jitter, eval (resize, mode, crop), train kind, extra sizes)  §1.2-§5.2
DATA_SPEC = {
    "zfnet": (224, "uint8", IMAGENET, None, (256, "square", 224), "random_resized_crop", ()),
    "sppnet": (224, "uint8", IMAGENET, (0.4, 0.4, 0.4, 0.1), (256, "square", 224), "random_resized_crop", (180,)),
    "resnet50_bam": (224, "uint8", IMAGENET, (0.4, 0.4, 0.4, 0.1), (256, "short_side", 224), "random_resized_crop",
                     ()),
    "googlenet_imagenet": (224, "uint8", IMAGENET, (0.4, 0.4, 0.4, 0.1), (256, "short_side", 224),
                           "random_resized_crop", ()),
    "googlenet_cifar10": (224, "rescale", CIFAR, None, (224, "square", 224), "pad_crop", ()),
    "genet_res50": (224, "uint8", IMAGENET, None, (256, "short_side", 224), "random_resized_crop", ()),
    "inception_v4": (299, "rescale", IMAGENET, (0.4, 0.4, 0.4, 0.0), (299, "short_side", 299),
                     "random_resized_crop", ()),
}


# The 310 app's resize and crop (§1.5, §2.4, §3.5, §4.4, §5.5): eval.py's everywhere except ZFNet/SPPNet,
# whose app resizes the short side to 256 where eval.py squashes to (256, 256).
INFER_SPEC = {name: spec[4] for name, spec in DATA_SPEC.items()}
INFER_SPEC.update({"zfnet": (256, "short_side", 224), "sppnet": (256, "short_side", 224)})


@pytest.mark.parametrize("name", sorted(INFER_SPEC))
def test_infer_transform_is_the_310_apps(name):
    cfg = get_data_config(name)
    assert (cfg.infer.resize_size, cfg.infer.resize_mode, cfg.infer.crop_size) == INFER_SPEC[name]
    small = cfg.at_size(112)  # scales along with eval's
    assert (small.infer.resize_size, small.infer.crop_size) == (small.eval.resize_size, 112)
    assert small.infer.resize_mode == INFER_SPEC[name][1]


def test_data_config_names():
    assert set(DATA_CONFIGS) == set(DATA_SPEC)
    assert {m.data_config for m in MODELS.values()} <= set(DATA_CONFIGS)


@pytest.mark.parametrize("name", sorted(DATA_SPEC))
def test_data_config_matches_facts(name):
    size, normalize, (mean, std), jitter, (resize, mode, crop), kind, extra = DATA_SPEC[name]
    cfg = get_data_config(name)
    assert (cfg.input_size, cfg.normalize, cfg.mean, cfg.std) == (size, normalize, mean, std)
    assert cfg.interpolation == "bilinear"
    got_jitter = cfg.train.color_jitter
    assert (dataclasses.astuple(got_jitter) if got_jitter else None) == jitter
    assert (cfg.eval.resize_size, cfg.eval.resize_mode, cfg.eval.crop_size) == (resize, mode, crop)
    assert cfg.train.kind == kind and cfg.train.hflip == 0.5
    assert cfg.extra_train_sizes == extra and cfg.train_sizes == (size, *extra)
    if kind == "random_resized_crop":
        assert (cfg.train.scale, cfg.train.ratio) == ((0.08, 1.0), (0.75, 1.333))
    else:
        assert (cfg.train.crop_size, cfg.train.padding) == (32, 4)


def test_googlenet_has_two_data_configs_and_model_names_resolve():
    assert get_data_config("googlenet_cifar10").dataset == "cifar10"
    assert get_data_config("googlenet") is get_data_config("googlenet_imagenet")
    for name, model in MODELS.items():
        assert get_data_config(name) is DATA_CONFIGS[model.data_config]
        assert model.input_size == DATA_CONFIGS[model.data_config].input_size


def test_unknown_names_raise_config_error():
    with pytest.raises(ConfigError, match=r"^data_config: unknown data config 'nope'; available: .*zfnet"):
        get_data_config("nope")
    with pytest.raises(ConfigError, match=r"^model: unknown model 'nope'; available: .*resnet50_bam"):
        get_model_config("nope")


def test_at_size_gives_a_reduced_copy():
    full = get_data_config("sppnet")
    small = full.at_size(112)
    assert (small.input_size, small.eval.crop_size, small.eval.resize_size) == (112, 112, 128)
    assert small.extra_train_sizes == (90,) and small.eval.resize_mode == "square"
    assert full.input_size == 224 and small.train == full.train  # the original is untouched
    cifar = get_data_config("googlenet_cifar10").at_size(32)
    assert (cifar.input_size, cifar.train.crop_size, cifar.eval.resize_size) == (32, 32, 32)
    with pytest.raises(ConfigError, match="input_size: must be > 0"):
        full.at_size(0)


@pytest.mark.parametrize("build, key", [
    (lambda: ColorJitter(brightness=-1), "brightness"),
    (lambda: ColorJitter(hue=0.6), "hue"),
    (lambda: TrainTransform(scale=(0.5, 0.1)), "scale"),
    (lambda: TrainTransform(hflip=1.5), "hflip"),
    (lambda: EvalTransform(200, "short_side", 224), "crop_size"),
    (lambda: EvalTransform(256, "diagonal", 224), "resize_mode"),
    (lambda: DataConfig("x", "imagenet", 0), "data_config.x.input_size"),
    (lambda: DataConfig("x", "imagenet", 224, std=(0.0, 1.0, 1.0)), "data_config.x.std"),
    (lambda: DataConfig("x", "imagenet", 128), "data_config.x.eval.crop_size"),
])
def test_invalid_data_values_raise_config_error(build, key):
    with pytest.raises(ConfigError) as err:
        build()
    assert err.value.key == key


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_data_config("zfnet").input_size = 64  # type: ignore[misc]


def test_zfnet_and_spp_tables():
    zf, spp = MODELS["zfnet"].arch, MODELS["sppnet"].arch
    assert [(c.out_channels, c.kernel, c.stride, c.padding) for c in zf.convs] == [
        (96, 7, 2, "same"), (256, 5, 2, "same"), (384, 3, 1, 1), (384, 3, 1, 1), (256, 3, 1, 1)]
    assert zf.lrn == (5, 1.0, 1.0, 0.5) and zf.fc_dims == (4096, 4096)
    assert (zf.drop_rate, spp.drop_rate) == (0.35, 0.41)
    assert zf.spp_levels is None and spp.spp_levels == (6, 3, 2, 1)
    assert archs.zfnet_map_size(224, spp) == 13 and archs.zfnet_map_size(180, spp) == 10


def test_spp_windows_match_facts():
    spp = MODELS["sppnet"].arch
    assert [archs.spp_window(13, n, spp) for n in (6, 3, 2, 1)] == [(0, 3, 2), (0, 5, 4), (0, 7, 6), (0, 13, 1)]
    assert [archs.spp_window(10, n, spp) for n in (6, 3, 2, 1)] == [(1, 2, 2), (0, 4, 3), (0, 5, 5), (0, 10, 1)]
    with pytest.raises(ConfigError, match="model.input_size: SPP level 6 is not exact on a 3x3"):
        archs.spp_window(3, 6, spp)


def test_resnet_tables():
    bam, ge_plus = MODELS["resnet50_bam"].arch, MODELS["genet_res50_theta_plus"].arch
    for arch in (bam, ge_plus):
        assert (arch.depths, arch.widths, arch.expansion) == ((3, 4, 6, 3), (64, 128, 256, 512), 4)
    assert archs.resnet_stage_sizes(224) == (56, 28, 14, 7)
    assert (bam.attn.kind, bam.attn.stages, bam.attn.reduction, bam.attn.dilation) == ("bam", (0, 1, 2), 16, 4)
    assert dataclasses.astuple(bam.stem_bn) == dataclasses.astuple(bam.block_bn) == (0.9, 1e-5)
    assert bam.explicit_padding and not ge_plus.explicit_padding
    assert dataclasses.astuple(ge_plus.stem_bn) == (0.95, 1e-4)
    assert dataclasses.astuple(ge_plus.block_bn) == (0.997, 1e-5)
    flags = {n: (MODELS[n].arch.attn.extra, MODELS[n].arch.attn.mlp) for n in MODELS if n.startswith("genet")}
    assert flags == {"genet_res50_theta_minus": (False, False), "genet_res50_theta": (True, False),
                     "genet_res50_theta_plus": (True, True)}
    assert ge_plus.attn.stage_kwargs(0)["downsample"] and not ge_plus.attn.stage_kwargs(1)["downsample"]
    assert MODELS["resnet50"].arch.attn is None


def test_googlenet_table_chains():
    arch = MODELS["googlenet"].arch
    specs = [s for stage in arch.stages for s in stage]
    assert [s.out_channels for s in specs] == [256, 480, 512, 512, 512, 528, 832, 832, 1024]
    assert all(b.in_channels == a.out_channels for a, b in zip(specs, specs[1:]))
    assert specs[0].in_channels == arch.stem[-1].out_channels == 192
    assert arch.branch5x5_kernel == 3 and arch.stage_pools == ((3, 2), (2, 2), None)
    assert dataclasses.astuple(arch.bn) == (0.9, 1e-3)


def test_inception_v4_table():
    arch = MODELS["inception_v4"].arch
    assert arch.block_counts == (4, 7, 3) and arch.reduction_a == (192, 224, 256, 384)
    assert dataclasses.astuple(arch.head_bn) == (0.1, 1e-3) and arch.drop_rate == 0.8


def test_every_model_records_its_parameter_count():
    for model in MODELS.values():
        assert model.expected_params(1000) is not None and model.paper.startswith("https://")
    assert MODELS["googlenet"].expected_params(10) == 5_610_154
