"""Inception-v4 (ModelZoo ``official/cv/Inception/inceptionv4``), PyTorch.

"Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
https://arxiv.org/abs/1602.07261

A port of :mod:`mindzoo.models.mindspore.inception_v4` with the same module and
parameter names: every conv is Conv ('valid' unless noted, no bias, XavierUniform)
-> BN (momentum 0.997 in MindSpore terms, eps 1e-5) -> ReLU; the head is global
mean -> BatchNorm1d -> Dropout (drops 80% in training) -> Linear -> BatchNorm1d
-> LogSoftmax, so the output is log-probabilities.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from mindzoo.archs import BatchNormConfig, InceptionV4Arch, get_model_config
from mindzoo.errors import ConfigError
from mindzoo.models.torch.layers import AvgPool2dSame, batch_norm1d, batch_norm2d, conv2d
from mindzoo.registry import register_model

__all__ = ["InceptionV4", "inception_v4"]

Spec = tuple  # (out_channels, kernel, stride, padding): padding 'valid' | 'same' | int


class BasicConv(nn.Module):
    """Conv (no bias, XavierUniform) -> BatchNorm2d -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding="valid", *,
                 bn: BatchNormConfig) -> None:
        super().__init__()
        self.conv = conv2d(cin, cout, kernel, stride, padding)
        nn.init.xavier_uniform_(self.conv.weight)
        self.bn = batch_norm2d(cout, bn)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


def _seq(cin: int, specs: list[Spec], bn: BatchNormConfig) -> nn.Sequential:
    layers = []
    for cout, kernel, stride, padding in specs:
        layers.append(BasicConv(cin, cout, kernel, stride, padding, bn=bn))
        cin = cout
    return nn.Sequential(*layers)


def _pool_proj(cin: int, cout: int, bn: BatchNormConfig) -> nn.Sequential:
    """AvgPool 3x3/1 'same' (padded cells left out of the mean) -> 1x1."""
    return nn.Sequential(AvgPool2dSame(3, 1), BasicConv(cin, cout, 1, bn=bn))


class Branches(nn.Module):
    """Run every branch on the same input and concatenate on channels."""

    def __init__(self, branches: list[nn.Module]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)


class Split(nn.Module):
    """A trunk followed by two parallel heads, concatenated (Inception-C's 1x3 | 3x1 split)."""

    def __init__(self, trunk: nn.Module, left: nn.Module, right: nn.Module) -> None:
        super().__init__()
        self.trunk, self.left, self.right = trunk, left, right

    def forward(self, x: Tensor) -> Tensor:
        x = self.trunk(x)
        return torch.cat((self.left(x), self.right(x)), dim=1)


def _stem(bn: BatchNormConfig) -> OrderedDict[str, nn.Module]:
    return OrderedDict([
        ("conv1", BasicConv(3, 32, 3, 2, bn=bn)),  # 32 x 149 x 149
        ("conv2", BasicConv(32, 32, 3, bn=bn)),  # 32 x 147 x 147
        ("conv3", BasicConv(32, 64, 3, 1, 1, bn=bn)),  # 64 x 147 x 147
        ("mixed_3a", Branches([nn.MaxPool2d(3, 2), BasicConv(64, 96, 3, 2, bn=bn)])),  # 160 x 73 x 73
        ("mixed_4a", Branches([  # 192 x 71 x 71
            _seq(160, [(64, 1, 1, "valid"), (96, 3, 1, "valid")], bn),
            _seq(160, [(64, 1, 1, "valid"), (64, (1, 7), 1, "same"), (64, (7, 1), 1, "same"),
                       (96, 3, 1, "valid")], bn),
        ])),
        ("mixed_5a", Branches([BasicConv(192, 192, 3, 2, bn=bn), nn.MaxPool2d(3, 2)])),  # 384 x 35 x 35
    ])


def _inception_a(bn: BatchNormConfig) -> Branches:
    return Branches([  # 384 x 35 x 35
        _seq(384, [(96, 1, 1, "valid")], bn),
        _seq(384, [(64, 1, 1, "valid"), (96, 3, 1, 1)], bn),
        _seq(384, [(64, 1, 1, "valid"), (96, 3, 1, 1), (96, 3, 1, 1)], bn),
        _pool_proj(384, 96, bn),
    ])


def _reduction_a(bn: BatchNormConfig, k: int, l: int, m: int, n: int) -> Branches:  # noqa: E741
    return Branches([  # (n + m + 384) x 17 x 17
        _seq(384, [(n, 3, 2, "valid")], bn),
        _seq(384, [(k, 1, 1, "valid"), (l, 3, 1, 1), (m, 3, 2, "valid")], bn),
        nn.MaxPool2d(3, 2),
    ])


def _inception_b(bn: BatchNormConfig) -> Branches:
    s = "same"
    return Branches([  # 1024 x 17 x 17
        _seq(1024, [(384, 1, 1, "valid")], bn),
        _seq(1024, [(192, 1, 1, "valid"), (224, (1, 7), 1, s), (256, (7, 1), 1, s)], bn),
        _seq(1024, [(192, 1, 1, "valid"), (192, (7, 1), 1, s), (224, (1, 7), 1, s), (224, (7, 1), 1, s),
                    (256, (1, 7), 1, s)], bn),
        _pool_proj(1024, 128, bn),
    ])


def _reduction_b(bn: BatchNormConfig) -> Branches:
    return Branches([  # 1536 x 8 x 8
        _seq(1024, [(192, 1, 1, "valid"), (192, 3, 2, "valid")], bn),
        _seq(1024, [(256, 1, 1, "valid"), (256, (1, 7), 1, "same"), (320, (7, 1), 1, "same"),
                    (320, 3, 2, "valid")], bn),
        nn.MaxPool2d(3, 2),
    ])


def _inception_c(bn: BatchNormConfig) -> Branches:
    s = "same"
    return Branches([  # 1536 x 8 x 8
        _seq(1536, [(256, 1, 1, "valid")], bn),
        Split(_seq(1536, [(384, 1, 1, "valid")], bn), _seq(384, [(256, (1, 3), 1, s)], bn),
              _seq(384, [(256, (3, 1), 1, s)], bn)),
        Split(_seq(1536, [(384, 1, 1, "valid"), (448, (3, 1), 1, s), (512, (1, 3), 1, s)], bn),
              _seq(512, [(256, (1, 3), 1, s)], bn), _seq(512, [(256, (3, 1), 1, s)], bn)),
        _pool_proj(1536, 256, bn),
    ])


class InceptionV4(nn.Module):
    """Inception-v4 at 299x299 (any side >= 75 works: every stage is 'valid' or 'same')."""

    def __init__(self, arch: InceptionV4Arch, *, num_classes: int = 1000, drop_rate: float | None = None) -> None:
        super().__init__()
        bn = arch.bn
        layers = _stem(bn)
        n_a, n_b, n_c = arch.block_counts
        layers.update((f"inception_a{i + 1}", _inception_a(bn)) for i in range(n_a))
        layers["reduction_a"] = _reduction_a(bn, *arch.reduction_a)
        layers.update((f"inception_b{i + 1}", _inception_b(bn)) for i in range(n_b))
        layers["reduction_b"] = _reduction_b(bn)
        layers.update((f"inception_c{i + 1}", _inception_c(bn)) for i in range(n_c))
        self.features = nn.Sequential(layers)
        self.num_features = arch.num_features
        self.head_bn = batch_norm1d(arch.num_features, arch.head_bn)
        self.dropout = nn.Dropout(p=arch.drop_rate if drop_rate is None else drop_rate)  # p = drop probability
        self.fc = nn.Linear(arch.num_features, num_classes)
        nn.init.xavier_uniform_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)
        self.out_bn = batch_norm1d(num_classes, arch.out_bn)
        self.log_softmax = nn.LogSoftmax(dim=1)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_stages(self, x: Tensor) -> OrderedDict[str, Tensor]:
        """Output of every named stage (for shape checks)."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        for name, module in self.features.named_children():
            x = out[name] = module(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # N x 1536 x 8 x 8
        x = x.mean(dim=(2, 3))  # N x 1536
        x = self.dropout(self.head_bn(x))
        return self.log_softmax(self.out_bn(self.fc(x)))  # N x num_classes (log-probabilities)


def _create_inception_v4(name: str, *, num_classes: int, input_size: int, **kwargs) -> InceptionV4:
    arch = get_model_config(name).arch
    if input_size < arch.min_input_size:
        raise ConfigError("model.input_size", f"must be >= {arch.min_input_size} for {name} (got {input_size})")
    return InceptionV4(arch, num_classes=num_classes, **kwargs)


@register_model
def inception_v4(*, num_classes: int = 1000, input_size: int = 299, **kwargs) -> InceptionV4:
    """Inception-v4; ``input_size`` only checks the minimum side (the head is a global mean)."""
    return _create_inception_v4("inception_v4", num_classes=num_classes, input_size=input_size, **kwargs)
