"""Framework-neutral architecture and data configs: the single source of truth.

Every number that models, data pipelines, export and inference need lives here
once as frozen dataclasses (channel/stage tables, SPP levels, BatchNorm settings,
input size, mean/std, crops), read by ``mindzoo.models.<framework>``; nothing here
imports a framework. Numbers follow the facts sheet (``modelzoo_facts.md``, section
cited). BatchNorm momentum is MindSpore's (``moving = m*moving + (1-m)*batch``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from mindzoo.errors import ConfigError

__all__ = [
    "BamConfig", "BatchNormConfig", "ColorJitter", "ConvSpec", "DataConfig", "EvalTransform", "GeConfig",
    "GoogLeNetArch", "InceptionSpec", "InceptionV4Arch", "ModelConfig", "ResNetArch", "TrainTransform",
    "ZFNetArch", "DATA_CONFIGS", "MODELS", "get_data_config", "get_model_config", "resnet_stage_sizes",
    "same_size", "spp_window", "valid_size", "zfnet_map_size",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2023, 0.1994, 0.2010)


def _check(condition: bool, key: str, problem: str) -> None:
    if not condition:
        raise ConfigError(key, problem)


# Data configs (timm's pretrained_cfg): read by the data pipeline, export and inference.
@dataclass(frozen=True)
class ColorJitter:
    """RandomColorAdjust factors (brightness, contrast, saturation in [1-f, 1+f]; hue in [-h, h])."""

    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1

    def __post_init__(self) -> None:
        _check(min(self.brightness, self.contrast, self.saturation) >= 0, "brightness", "factors must be >= 0")
        _check(0 <= self.hue <= 0.5, "hue", "must be in [0, 0.5]")


@dataclass(frozen=True)
class TrainTransform:
    """``random_resized_crop``: random crop (scale, ratio) resized to the input size; ``pad_crop``
    (CIFAR): random ``crop_size`` crop of the image zero-padded by ``padding``, then a square resize."""

    kind: Literal["random_resized_crop", "pad_crop"] = "random_resized_crop"
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (0.75, 1.333)
    crop_size: int = 32
    padding: int = 4
    hflip: float = 0.5
    color_jitter: ColorJitter | None = None

    def __post_init__(self) -> None:
        _check(self.kind in ("random_resized_crop", "pad_crop"), "kind", f"unknown transform {self.kind!r}")
        _check(0 < self.scale[0] <= self.scale[1] <= 1, "scale", "must satisfy 0 < min <= max <= 1")
        _check(0 < self.ratio[0] <= self.ratio[1], "ratio", "must satisfy 0 < min <= max")
        _check(self.crop_size > 0 and self.padding >= 0, "crop_size", "crop must be > 0 and padding >= 0")
        _check(0 <= self.hflip <= 1, "hflip", "must be a probability in [0, 1]")


@dataclass(frozen=True)
class EvalTransform:
    """Eval-time resize then center crop; ``square`` ignores the aspect ratio."""

    resize_size: int = 256
    resize_mode: Literal["short_side", "square"] = "short_side"
    crop_size: int = 224

    def __post_init__(self) -> None:
        _check(self.resize_mode in ("short_side", "square"), "resize_mode", "must be short_side or square")
        _check(0 < self.crop_size <= self.resize_size, "crop_size", "must be > 0 and <= resize_size")


@dataclass(frozen=True)
class DataConfig:
    """Input size, normalisation and transforms of one recipe's data pipeline.

    ``normalize``: ``uint8`` uses mean*255 / std*255 on the raw image; ``rescale`` multiplies by
    1/255 first (the same map). ``extra_train_sizes`` (SPPNet multi-size): crop at ``input_size``,
    then resize to the extra size. ``infer_eval``: the recipe's Ascend 310 app's resize and crop where
    they differ from eval.py's (``None``: the same); :attr:`infer` is the one inference uses."""

    name: str
    dataset: Literal["imagenet", "cifar10"]
    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    normalize: Literal["uint8", "rescale"] = "uint8"
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"
    train: TrainTransform = field(default_factory=TrainTransform)
    eval: EvalTransform = field(default_factory=EvalTransform)
    extra_train_sizes: tuple[int, ...] = ()
    infer_eval: EvalTransform | None = None

    def __post_init__(self) -> None:
        key = f"data_config.{self.name}"
        _check(self.input_size > 0, f"{key}.input_size", "must be > 0")
        _check(len(self.mean) == len(self.std) == 3 and min(self.std) > 0, f"{key}.std", "need 3 channels, std > 0")
        _check(self.normalize in ("uint8", "rescale"), f"{key}.normalize", "must be uint8 or rescale")
        for name, e in (("eval", self.eval), ("infer_eval", self.infer)):
            _check(e.crop_size == self.input_size, f"{key}.{name}.crop_size", "must equal input_size")
        _check(all(s > 0 for s in self.extra_train_sizes), f"{key}.extra_train_sizes", "must be > 0")

    @property
    def infer(self) -> EvalTransform:
        return self.infer_eval or self.eval

    @property
    def train_sizes(self) -> tuple[int, ...]:
        return (self.input_size, *self.extra_train_sizes)

    def at_size(self, size: int) -> DataConfig:
        """A copy for a reduced (CPU) input size; eval resize and extra sizes scale along."""
        _check(size > 0, f"data_config.{self.name}.input_size", "must be > 0")
        scale = size / self.input_size

        def scaled(e: EvalTransform) -> EvalTransform:
            return dataclasses.replace(e, resize_size=max(size, round(e.resize_size * scale)), crop_size=size)

        return dataclasses.replace(
            self, input_size=size, eval=scaled(self.eval), infer_eval=self.infer_eval and scaled(self.infer_eval),
            extra_train_sizes=tuple(round(s * scale) for s in self.extra_train_sizes),
        )


_JITTER = ColorJitter(0.4, 0.4, 0.4, 0.1)
_IMAGENET_EVAL = EvalTransform(256, "short_side", 224)


def _data_configs() -> dict[str, DataConfig]:
    cifar = dict(dataset="cifar10", input_size=224, mean=CIFAR10_MEAN, std=CIFAR10_STD, normalize="rescale",
                 eval=EvalTransform(224, "square", 224))  # §3.2: 32x32 upsampled to (224, 224), no crop
    configs = [
        # §1.2: zfnet trains without color jitter; eval.py resizes to a square (256, 256), the 310 app
        # (§1.5) the short side to 256.
        DataConfig("zfnet", "imagenet", 224, eval=EvalTransform(256, "square", 224), infer_eval=_IMAGENET_EVAL),
        # §1.2 QUIRK: sppnet_single gets jitter via the model-name slot; 180 = crop 224 then Resize(180).
        DataConfig("sppnet", "imagenet", 224, train=TrainTransform(color_jitter=_JITTER),
                   eval=EvalTransform(256, "square", 224), extra_train_sizes=(180,), infer_eval=_IMAGENET_EVAL),
        DataConfig("resnet50_bam", "imagenet", 224, train=TrainTransform(color_jitter=_JITTER), eval=_IMAGENET_EVAL),
        DataConfig("googlenet_imagenet", "imagenet", 224, train=TrainTransform(color_jitter=_JITTER),
                   eval=_IMAGENET_EVAL),
        DataConfig("googlenet_cifar10", train=TrainTransform("pad_crop", crop_size=32, padding=4), **cifar),
        DataConfig("genet_res50", "imagenet", 224, eval=_IMAGENET_EVAL),  # §4.2: no color jitter
        # §5.2: 299 crops, jitter with hue 0, rescale by 1/255 before mean/std, eval short side 299.
        DataConfig("inception_v4", "imagenet", 299, normalize="rescale",
                   train=TrainTransform(color_jitter=ColorJitter(0.4, 0.4, 0.4, 0.0)),
                   eval=EvalTransform(299, "short_side", 299)),
    ]
    return {c.name: c for c in configs}


DATA_CONFIGS: dict[str, DataConfig] = _data_configs()


def same_size(size: int, stride: int) -> int:
    """Output side of a TF-style 'same' conv/pool."""
    return -(-size // stride)


def valid_size(size: int, kernel: int, stride: int = 1, pad: int = 0) -> int:
    """Output side of a 'valid' (or explicitly padded) conv/pool."""
    return (size + 2 * pad - kernel) // stride + 1


@dataclass(frozen=True)
class BatchNormConfig:
    momentum: float = 0.9  # MindSpore convention
    eps: float = 1e-5


@dataclass(frozen=True)
class ConvSpec:
    """One conv of a plain conv stack; ``padding`` is 'same' or an explicit pixel count."""

    out_channels: int
    kernel: int
    stride: int = 1
    padding: int | Literal["same"] = "same"
    lrn_pool: bool = False  # followed by ReLU -> LRN -> MaxPool (ZFNet conv1/conv2)


@dataclass(frozen=True)
class ZFNetArch:
    """ZFNet / SPPNet (§1.1): five biased convs, optional SPP, three FCs; no BatchNorm."""

    convs: tuple[ConvSpec, ...] = (
        ConvSpec(96, 7, 2, "same", lrn_pool=True),
        ConvSpec(256, 5, 2, "same", lrn_pool=True),
        ConvSpec(384, 3, 1, 1),
        ConvSpec(384, 3, 1, 1),
        ConvSpec(256, 3, 1, 1),
    )
    pool: tuple[int, int] = (3, 2)  # MaxPool kernel, stride ('valid') after LRN and (zfnet) after conv5
    lrn: tuple[int, float, float, float] = (5, 1.0, 1.0, 0.5)  # depth_radius, bias, alpha, beta (§0)
    spp_levels: tuple[int, ...] | None = None  # None: zfnet (MaxPool + flatten)
    spp_pad: tuple[tuple[int, int, int], ...] = ((10, 6, 1),)  # (map, bins, pad): the a=10, n=6 case
    fc_dims: tuple[int, ...] = (4096, 4096)
    drop_rate: float = 0.35


def zfnet_map_size(input_size: int, arch: ZFNetArch) -> int:
    """Side of the conv5 map (13 at 224, 10 at 180)."""
    size = input_size
    for conv in arch.convs:
        size = same_size(size, conv.stride) if conv.padding == "same" else valid_size(
            size, conv.kernel, conv.stride, conv.padding)
        if conv.lrn_pool:
            size = valid_size(size, *arch.pool)
    return size


def spp_window(map_size: int, bins: int, arch: ZFNetArch) -> tuple[int, int, int]:
    """(pad, kernel, stride) of one SPP level: window ceil(a/n), stride floor(a/n) (§1.1)."""
    if bins == 1:
        return 0, map_size, 1  # global max
    pad = next((p for a, n, p in arch.spp_pad if (a, n) == (map_size, bins)), 0)
    size = map_size + 2 * pad
    kernel, stride = math.ceil(size / bins), size // bins
    if stride < 1 or valid_size(size, kernel, stride) != bins:
        raise ConfigError("model.input_size",
                          f"SPP level {bins} is not exact on a {map_size}x{map_size} conv map; "
                          "pick an input size whose conv map suits every level (224, 180 and 112 do)")
    return pad, kernel, stride


@dataclass(frozen=True)
class BamConfig:
    """BAM between stages (§2.1): channel + dilated spatial gate, Att = 1 + sigmoid(c * s)."""

    kind: ClassVar[str] = "bam"  # create_attn key
    placement: ClassVar[str] = "stage"
    stages: tuple[int, ...] = (0, 1, 2)  # after layer1..layer3, none after layer4
    reduction: int = 16
    dilation: int = 4
    num_dilated: int = 2

    def stage_kwargs(self, stage: int) -> dict[str, Any]:
        return {"reduction": self.reduction, "dilation": self.dilation, "num_dilated": self.num_dilated}


@dataclass(frozen=True)
class GeConfig:
    """Gather-Excite inside every bottleneck (§4.1); extra = depthwise gather, mlp = excite MLP."""

    kind: ClassVar[str] = "ge"
    placement: ClassVar[str] = "block"
    extra: bool = True
    mlp: bool = True
    stages: tuple[int, ...] = (0, 1, 2, 3)
    reduction: int = 16
    downsample_stages: tuple[int, ...] = (0,)  # recipe: spatial >= 56, i.e. layer1 at 224

    def stage_kwargs(self, stage: int) -> dict[str, Any]:
        return {"extra": self.extra, "mlp": self.mlp, "reduction": self.reduction,
                "downsample": self.extra and stage in self.downsample_stages}


@dataclass(frozen=True)
class ResNetArch:
    """ResNet-50 v1.5 body (stride on the 3x3) shared by plain, BAM and GENet variants."""

    depths: tuple[int, ...] = (3, 4, 6, 3)
    widths: tuple[int, ...] = (64, 128, 256, 512)  # bottleneck planes; out = planes * expansion
    expansion: int = 4
    stem_width: int = 64
    explicit_padding: bool = True  # BAM: stem pad 3, 3x3 pad 1; GENet: 'same' everywhere
    stem_bn: BatchNormConfig = BatchNormConfig()
    block_bn: BatchNormConfig = BatchNormConfig()
    head_pool: Literal["avgpool", "mean"] = "avgpool"  # BAM: AvgPool 7x7 s7; GENet: reduce-mean
    fc_init: Literal["normal", "truncated_normal"] = "normal"  # sigma 0.01 either way
    attn: BamConfig | GeConfig | None = None


def resnet_stage_sizes(input_size: int) -> tuple[int, ...]:
    """Spatial side after layer1..layer4 (56, 28, 14, 7 at 224)."""
    sizes = [same_size(same_size(input_size, 2), 2)]  # stem conv /2, maxpool /2
    for _ in range(3):
        sizes.append(same_size(sizes[-1], 2))  # layer2..4 stride 2 ('same' or pad 1: same size)
    return tuple(sizes)


@dataclass(frozen=True)
class InceptionSpec:
    """GoogLeNet inception: 1x1 | 1x1 -> 3x3 | 1x1 -> '5x5' | maxpool -> 1x1 (§3.1)."""

    name: str
    in_channels: int
    ch1x1: int
    ch3x3_reduce: int
    ch3x3: int
    ch5x5_reduce: int
    ch5x5: int
    pool_proj: int

    @property
    def out_channels(self) -> int:
        return self.ch1x1 + self.ch3x3 + self.ch5x5 + self.pool_proj


@dataclass(frozen=True)
class GoogLeNetArch:
    """GoogLeNet (§3.1): conv stem, inception stages each followed by a MaxPool ('same')."""

    stem: tuple[ConvSpec, ...] = (ConvSpec(64, 7, 2), ConvSpec(64, 1), ConvSpec(192, 3))
    stages: tuple[tuple[InceptionSpec, ...], ...] = (
        (InceptionSpec("inception3a", 192, 64, 96, 128, 16, 32, 32),
         InceptionSpec("inception3b", 256, 128, 128, 192, 32, 96, 64)),
        (InceptionSpec("inception4a", 480, 192, 96, 208, 16, 48, 64),
         InceptionSpec("inception4b", 512, 160, 112, 224, 24, 64, 64),
         InceptionSpec("inception4c", 512, 128, 128, 256, 24, 64, 64),
         InceptionSpec("inception4d", 512, 112, 144, 288, 32, 64, 64),
         InceptionSpec("inception4e", 528, 256, 160, 320, 32, 128, 128)),
        (InceptionSpec("inception5a", 832, 256, 160, 320, 32, 128, 128),
         InceptionSpec("inception5b", 832, 384, 192, 384, 48, 128, 128)),
    )
    stage_pools: tuple[tuple[int, int] | None, ...] = ((3, 2), (2, 2), None)  # maxpool3 3x3/2, maxpool4 2x2/2
    stem_pool: tuple[int, int] = (3, 2)  # maxpool1 and maxpool2 ('same')
    stem_pool_after: tuple[int, ...] = (1, 3)  # after conv1 and conv3
    branch5x5_kernel: int = 3  # QUIRK kept: the "5x5" branch is a 3x3 conv
    bn: BatchNormConfig = BatchNormConfig(0.9, 1e-3)
    drop_rate: float = 0.2  # created but never used in the forward pass (§3.1)


@dataclass(frozen=True)
class InceptionV4Arch:
    """Inception-v4 (§5.1): stem, 4x A, Reduction-A, 7x B, Reduction-B, 3x C."""

    block_counts: tuple[int, int, int] = (4, 7, 3)
    reduction_a: tuple[int, int, int, int] = (192, 224, 256, 384)  # k, l, m, n
    bn: BatchNormConfig = BatchNormConfig(0.997, 1e-5)  # nn.Conv2dBnAct defaults
    head_bn: BatchNormConfig = BatchNormConfig(0.1, 1e-3)  # BatchNorm1d(1536) before dropout
    out_bn: BatchNormConfig = BatchNormConfig(0.9, 1e-5)  # DenseBnAct's BatchNorm1d
    num_features: int = 1536
    drop_rate: float = 0.8  # drops 80% in training (§5.1)
    min_input_size: int = 75  # smallest side every 'valid' stage accepts


@dataclass(frozen=True)
class ModelConfig:
    """A registered model: family, architecture, default data config, expected parameter counts."""

    name: str
    family: Literal["zfnet", "resnet", "googlenet", "inception_v4"]
    arch: Any
    data_config: str
    paper: str
    num_params: tuple[tuple[int, int], ...]  # (num_classes, trainable params at full input size)

    def expected_params(self, num_classes: int = 1000) -> int | None:  # None: not in the spec
        return dict(self.num_params).get(num_classes)

    @property
    def input_size(self) -> int:
        return DATA_CONFIGS[self.data_config].input_size


_BAM_BODY = ResNetArch()  # §2.1: BN 0.9 / 1e-5 everywhere, explicit pad, AvgPool head, FC N(0, 0.01)
_GE_BODY = ResNetArch(explicit_padding=False, stem_bn=BatchNormConfig(0.95, 1e-4),
                      block_bn=BatchNormConfig(0.997, 1e-5), head_pool="mean", fc_init="truncated_normal")


def _models() -> dict[str, ModelConfig]:
    arxiv, ge = "https://arxiv.org/abs/", dataclasses.replace
    models = [
        ModelConfig("zfnet", "zfnet", ZFNetArch(), "zfnet", arxiv + "1311.2901", ((1000, 62_357_608),)),
        ModelConfig("sppnet", "zfnet", ZFNetArch(spp_levels=(6, 3, 2, 1), drop_rate=0.41), "sppnet",
                    arxiv + "1406.4729", ((1000, 77_037_672),)),
        ModelConfig("resnet50", "resnet", _BAM_BODY, "resnet50_bam", arxiv + "1512.03385", ((1000, 25_557_032),)),
        ModelConfig("resnet50_bam", "resnet", ge(_BAM_BODY, attn=BamConfig()), "resnet50_bam",
                    arxiv + "1807.06514", ((1000, 25_915_099),)),
        ModelConfig("genet_res50_theta_minus", "resnet", ge(_GE_BODY, attn=GeConfig(extra=False, mlp=False)),
                    "genet_res50", arxiv + "1810.12348", ((1000, 25_557_032),)),
        ModelConfig("genet_res50_theta", "resnet", ge(_GE_BODY, attn=GeConfig(extra=True, mlp=False)),
                    "genet_res50", arxiv + "1810.12348", ((1000, 31_071_272),)),
        ModelConfig("genet_res50_theta_plus", "resnet", ge(_GE_BODY, attn=GeConfig(extra=True, mlp=True)),
                    "genet_res50", arxiv + "1810.12348", ((1000, 33_586_216),)),
        ModelConfig("googlenet", "googlenet", GoogLeNetArch(), "googlenet_imagenet", arxiv + "1409.4842",
                    ((1000, 6_624_904), (10, 5_610_154))),
        ModelConfig("inception_v4", "inception_v4", InceptionV4Arch(), "inception_v4", arxiv + "1602.07261",
                    ((1000, 42_684_888),)),
    ]
    return {m.name: m for m in models}


MODELS: dict[str, ModelConfig] = _models()


def get_model_config(name: str) -> ModelConfig:
    """The framework-neutral config of a registered model name."""
    if name not in MODELS:
        raise ConfigError("model", f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def get_data_config(name: str) -> DataConfig:
    """A data config by its own name (``googlenet_cifar10``) or by model name (its default)."""
    if name in DATA_CONFIGS:
        return DATA_CONFIGS[name]
    if name in MODELS:
        return DATA_CONFIGS[MODELS[name].data_config]
    raise ConfigError("data_config", f"unknown data config {name!r}; available: {', '.join(sorted(DATA_CONFIGS))}")
