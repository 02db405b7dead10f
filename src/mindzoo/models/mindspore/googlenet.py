"""GoogLeNet / Inception v1 (ModelZoo ``research/cv/googlenet``), MindSpore.

"Going Deeper with Convolutions", https://arxiv.org/abs/1409.4842

As the recipe: every conv is Conv ('same', no bias, TruncatedNormal 0.02) -> BN
(eps 1e-3) -> ReLU; no auxiliary classifiers and no LRN; the "5x5" branch uses a
3x3 kernel (kept). With ``num_classes=10`` it is the recipe's CIFAR-10 model.
"""

from __future__ import annotations

from collections import OrderedDict

from mindspore import Tensor, nn, ops
from mindspore.common.initializer import TruncatedNormal

from mindzoo.archs import BatchNormConfig, GoogLeNetArch, InceptionSpec, get_model_config
from mindzoo.registry import register_model

__all__ = ["GoogLeNet", "Inception", "googlenet"]


class ConvBlock(nn.Cell):
    """Conv ('same', no bias, TruncatedNormal 0.02) -> BatchNorm2d -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, *, bn: BatchNormConfig) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, pad_mode="same", has_bias=False,
                              weight_init=TruncatedNormal(0.02))
        self.bn = nn.BatchNorm2d(cout, momentum=bn.momentum, eps=bn.eps)
        self.relu = nn.ReLU()

    def construct(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Cell):
    """[1x1] + [1x1 -> 3x3] + [1x1 -> "5x5"] + [MaxPool 3x3/1 'same' -> 1x1], concatenated on channels."""

    def __init__(self, spec: InceptionSpec, *, bn: BatchNormConfig, kernel5x5: int) -> None:
        super().__init__()
        self.branch1 = ConvBlock(spec.in_channels, spec.ch1x1, 1, bn=bn)
        self.branch2 = nn.SequentialCell([ConvBlock(spec.in_channels, spec.ch3x3_reduce, 1, bn=bn),
                                          ConvBlock(spec.ch3x3_reduce, spec.ch3x3, 3, bn=bn)])
        self.branch3 = nn.SequentialCell([ConvBlock(spec.in_channels, spec.ch5x5_reduce, 1, bn=bn),
                                          ConvBlock(spec.ch5x5_reduce, spec.ch5x5, kernel5x5, bn=bn)])
        self.branch4 = nn.SequentialCell([nn.MaxPool2d(3, 1, pad_mode="same"),
                                          ConvBlock(spec.in_channels, spec.pool_proj, 1, bn=bn)])

    def construct(self, x: Tensor) -> Tensor:
        return ops.cat((self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)), axis=1)


class GoogLeNet(nn.Cell):
    """GoogLeNet without auxiliary heads; the head is a global mean (works at any input size)."""

    def __init__(self, arch: GoogLeNetArch, *, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Cell] = OrderedDict()
        pool_ids = iter(range(1, 100))  # maxpool1, maxpool2, ... in order of appearance
        cin = in_channels
        for i, conv in enumerate(arch.stem, start=1):
            layers[f"conv{i}"] = ConvBlock(cin, conv.out_channels, conv.kernel, conv.stride, bn=arch.bn)
            cin = conv.out_channels
            if i in arch.stem_pool_after:
                layers[f"maxpool{next(pool_ids)}"] = nn.MaxPool2d(*arch.stem_pool, pad_mode="same")
        for stage, pool in zip(arch.stages, arch.stage_pools):
            for spec in stage:
                layers[spec.name] = Inception(spec, bn=arch.bn, kernel5x5=arch.branch5x5_kernel)
            if pool is not None:
                layers[f"maxpool{next(pool_ids)}"] = nn.MaxPool2d(*pool, pad_mode="same")
        self.features = nn.SequentialCell(layers)
        self.num_features = arch.stages[-1][-1].out_channels
        self.dropout = nn.Dropout(p=arch.drop_rate)  # QUIRK kept: created but unused in construct
        self.classifier = nn.Dense(self.num_features, num_classes, weight_init=TruncatedNormal(0.02),
                                   bias_init=TruncatedNormal(0.02))

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_stages(self, x: Tensor) -> OrderedDict[str, Tensor]:
        """Output of every named stage (PyNative helper for shape checks)."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        for name, cell in self.features.name_cells().items():
            x = out[name] = cell(x)
        return out

    def construct(self, x: Tensor) -> Tensor:
        x = self.features(x)  # N x 1024 x 7 x 7
        x = ops.mean(x, (2, 3), keep_dims=False)  # N x 1024
        return self.classifier(x)  # N x num_classes


def _create_googlenet(name: str, *, num_classes: int, **kwargs) -> GoogLeNet:
    return GoogLeNet(get_model_config(name).arch, num_classes=num_classes, **kwargs)


@register_model
def googlenet(*, num_classes: int = 1000, input_size: int = 224, **kwargs) -> GoogLeNet:
    """GoogLeNet; ``num_classes=10`` gives the CIFAR-10 recipe's head. Any ``input_size`` works."""
    return _create_googlenet("googlenet", num_classes=num_classes, **kwargs)
