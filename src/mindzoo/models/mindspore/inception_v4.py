"""Inception-v4 (ModelZoo ``official/cv/Inception/inceptionv4``), MindSpore.

"Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
https://arxiv.org/abs/1602.07261

As the recipe: every conv is Conv ('valid' unless noted, no bias, XavierUniform)
-> BN (momentum 0.997, eps 1e-5) -> ReLU; the head is global mean -> BatchNorm1d
-> Dropout (drops 80% in training) -> Dense -> BatchNorm1d -> LogSoftmax, so the
output is log-probabilities (softmax cross-entropy on them equals CE on logits).
"""

from __future__ import annotations

from collections import OrderedDict

from mindspore import Tensor, nn, ops
from mindspore.common.initializer import XavierUniform

from mindzoo.archs import BatchNormConfig, InceptionV4Arch, get_model_config
from mindzoo.errors import ConfigError
from mindzoo.registry import register_model

__all__ = ["InceptionV4", "inception_v4"]

Spec = tuple  # (out_channels, kernel, stride, padding): padding 'valid' | 'same' | int


class BasicConv(nn.Cell):
    """Conv (no bias, XavierUniform) -> BatchNorm2d -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel, stride: int = 1, padding="valid", *,
                 bn: BatchNormConfig) -> None:
        super().__init__()
        pad = {"pad_mode": padding} if isinstance(padding, str) else {"pad_mode": "pad", "padding": padding}
        self.conv = nn.Conv2d(cin, cout, kernel, stride, has_bias=False, weight_init=XavierUniform(), **pad)
        self.bn = nn.BatchNorm2d(cout, momentum=bn.momentum, eps=bn.eps)
        self.relu = nn.ReLU()

    def construct(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


def _seq(cin: int, specs: list[Spec], bn: BatchNormConfig) -> nn.SequentialCell:
    layers = []
    for cout, kernel, stride, padding in specs:
        layers.append(BasicConv(cin, cout, kernel, stride, padding, bn=bn))
        cin = cout
    return nn.SequentialCell(layers)


def _pool_proj(cin: int, cout: int, bn: BatchNormConfig) -> nn.SequentialCell:
    """AvgPool 3x3/1 'same' (padded cells left out of the mean) -> 1x1."""
    return nn.SequentialCell([nn.AvgPool2d(3, 1, pad_mode="same"), BasicConv(cin, cout, 1, bn=bn)])


class Branches(nn.Cell):
    """Run every branch on the same input and concatenate on channels."""

    def __init__(self, branches: list[nn.Cell]) -> None:
        super().__init__()
        self.branches = nn.CellList(branches)

    def construct(self, x: Tensor) -> Tensor:
        return ops.cat([branch(x) for branch in self.branches], axis=1)


class Split(nn.Cell):
    """A trunk followed by two parallel heads, concatenated (Inception-C's 1x3 | 3x1 split)."""

    def __init__(self, trunk: nn.Cell, left: nn.Cell, right: nn.Cell) -> None:
        super().__init__()
        self.trunk, self.left, self.right = trunk, left, right

    def construct(self, x: Tensor) -> Tensor:
        x = self.trunk(x)
        return ops.cat((self.left(x), self.right(x)), axis=1)


def _stem(bn: BatchNormConfig) -> OrderedDict[str, nn.Cell]:
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


class InceptionV4(nn.Cell):
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
        self.features = nn.SequentialCell(layers)
        self.num_features = arch.num_features
        self.head_bn = nn.BatchNorm1d(arch.num_features, momentum=arch.head_bn.momentum, eps=arch.head_bn.eps)
        # The recipe builds p=0 for eval (is_train=False); set_train(False) disables dropout the same way.
        self.dropout = nn.Dropout(p=arch.drop_rate if drop_rate is None else drop_rate)
        self.fc = nn.Dense(arch.num_features, num_classes, weight_init=XavierUniform(), bias_init="zeros")
        self.out_bn = nn.BatchNorm1d(num_classes, momentum=arch.out_bn.momentum, eps=arch.out_bn.eps)
        self.log_softmax = nn.LogSoftmax(axis=1)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_stages(self, x: Tensor) -> OrderedDict[str, Tensor]:
        """Output of every named stage (PyNative helper for shape checks)."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        for name, cell in self.features.name_cells().items():
            x = out[name] = cell(x)
        return out

    def construct(self, x: Tensor) -> Tensor:
        x = self.features(x)  # N x 1536 x 8 x 8
        x = ops.mean(x, (2, 3), keep_dims=False)  # N x 1536
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
