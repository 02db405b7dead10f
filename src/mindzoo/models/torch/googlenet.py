"""GoogLeNet / Inception v1 (ModelZoo ``research/cv/googlenet``), PyTorch.

"Going Deeper with Convolutions", https://arxiv.org/abs/1409.4842

A port of :mod:`mindzoo.models.mindspore.googlenet` with the same module and
parameter names: every conv is Conv ('same', no bias, TruncatedNormal 0.02) ->
BN (eps 1e-3) -> ReLU; no auxiliary classifiers and no LRN; the "5x5" branch uses
a 3x3 kernel (kept). With ``num_classes=10`` it is the recipe's CIFAR-10 model.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from mindzoo.archs import BatchNormConfig, GoogLeNetArch, InceptionSpec, get_model_config
from mindzoo.models.torch.layers import MaxPool2dSame, batch_norm2d, conv2d
from mindzoo.registry import register_model

__all__ = ["GoogLeNet", "Inception", "googlenet"]


def _trunc_normal_(tensor: Tensor, sigma: float = 0.02) -> Tensor:
    # MindSpore's TruncatedNormal(sigma) cuts at the absolute values ±2 (its a/b defaults), not at ±2σ: for
    # σ = 0.02 that is a plain N(0, σ). Cutting at ±2σ would shrink the std by 12%, and behind BatchNorm a
    # smaller weight scale is a larger effective learning rate.
    return nn.init.trunc_normal_(tensor, std=sigma, a=-2.0, b=2.0)


class ConvBlock(nn.Module):
    """Conv ('same', no bias, TruncatedNormal 0.02) -> BatchNorm2d -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, *, bn: BatchNormConfig) -> None:
        super().__init__()
        self.conv = conv2d(cin, cout, kernel, stride, "same")
        _trunc_normal_(self.conv.weight)
        self.bn = batch_norm2d(cout, bn)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """[1x1] + [1x1 -> 3x3] + [1x1 -> "5x5"] + [MaxPool 3x3/1 'same' -> 1x1], concatenated on channels."""

    def __init__(self, spec: InceptionSpec, *, bn: BatchNormConfig, kernel5x5: int) -> None:
        super().__init__()
        self.branch1 = ConvBlock(spec.in_channels, spec.ch1x1, 1, bn=bn)
        self.branch2 = nn.Sequential(ConvBlock(spec.in_channels, spec.ch3x3_reduce, 1, bn=bn),
                                     ConvBlock(spec.ch3x3_reduce, spec.ch3x3, 3, bn=bn))
        self.branch3 = nn.Sequential(ConvBlock(spec.in_channels, spec.ch5x5_reduce, 1, bn=bn),
                                     ConvBlock(spec.ch5x5_reduce, spec.ch5x5, kernel5x5, bn=bn))
        self.branch4 = nn.Sequential(MaxPool2dSame(3, 1), ConvBlock(spec.in_channels, spec.pool_proj, 1, bn=bn))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)), dim=1)


class GoogLeNet(nn.Module):
    """GoogLeNet without auxiliary heads; the head is a global mean (works at any input size)."""

    def __init__(self, arch: GoogLeNetArch, *, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        pool_ids = iter(range(1, 100))  # maxpool1, maxpool2, ... in order of appearance
        cin = in_channels
        for i, conv in enumerate(arch.stem, start=1):
            layers[f"conv{i}"] = ConvBlock(cin, conv.out_channels, conv.kernel, conv.stride, bn=arch.bn)
            cin = conv.out_channels
            if i in arch.stem_pool_after:
                layers[f"maxpool{next(pool_ids)}"] = MaxPool2dSame(*arch.stem_pool)
        for stage, pool in zip(arch.stages, arch.stage_pools):
            for spec in stage:
                layers[spec.name] = Inception(spec, bn=arch.bn, kernel5x5=arch.branch5x5_kernel)
            if pool is not None:
                layers[f"maxpool{next(pool_ids)}"] = MaxPool2dSame(*pool)
        self.features = nn.Sequential(layers)
        self.num_features = arch.stages[-1][-1].out_channels
        self.dropout = nn.Dropout(p=arch.drop_rate)  # QUIRK kept: created but unused in forward
        self.classifier = nn.Linear(self.num_features, num_classes)
        _trunc_normal_(self.classifier.weight)
        _trunc_normal_(self.classifier.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_stages(self, x: Tensor) -> OrderedDict[str, Tensor]:
        """Output of every named stage (for shape checks)."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        for name, module in self.features.named_children():
            x = out[name] = module(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # N x 1024 x 7 x 7
        x = x.mean(dim=(2, 3))  # N x 1024
        return self.classifier(x)  # N x num_classes


def _create_googlenet(name: str, *, num_classes: int, **kwargs) -> GoogLeNet:
    return GoogLeNet(get_model_config(name).arch, num_classes=num_classes, **kwargs)


@register_model
def googlenet(*, num_classes: int = 1000, input_size: int = 224, **kwargs) -> GoogLeNet:
    """GoogLeNet; ``num_classes=10`` gives the CIFAR-10 recipe's head. Any ``input_size`` works."""
    return _create_googlenet("googlenet", num_classes=num_classes, **kwargs)
