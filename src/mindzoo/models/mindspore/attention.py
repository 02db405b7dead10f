"""Attention blocks plugged into the shared ResNet body, chosen by a string key.

BAM: "BAM: Bottleneck Attention Module", https://arxiv.org/abs/1807.06514 (ModelZoo ``research/cv/resnet50_bam``)
GE: "Gather-Excite", https://arxiv.org/abs/1810.12348 (ModelZoo ``research/cv/GENet_Res50``)

``create_attn("bam", channels, spatial_size=56)`` and
``create_attn("ge", channels, spatial_size=56, extra=True, mlp=True)`` return a
cell mapping ``x`` (N x C x H x W) to an attended tensor of the same shape.
``spatial_size`` is the side of the map the block sees, derived from the
model's input size, so fixed-kernel pools and the depthwise "global" gather
stay exact at 224 and still work at reduced CPU sizes.
"""

from __future__ import annotations

from collections.abc import Callable

from mindspore import Tensor, nn, ops
from mindspore.common.initializer import HeUniform, Normal

from mindzoo.archs import same_size
from mindzoo.errors import ConfigError

__all__ = ["BAM", "GatherExcite", "create_attn"]


def _conv(cin: int, cout: int, kernel: int, *, stride: int = 1, has_bias: bool = False, group: int = 1,
          padding: int | str = 0, dilation: int = 1) -> nn.Conv2d:
    """HeUniform conv (fan_in, a=0); an int padding is explicit, a string is the pad mode.

    A bias keeps MindSpore's default initialiser, as the recipe (which default it saw: facts §7)."""
    pad = {"pad_mode": padding} if isinstance(padding, str) else {"pad_mode": "pad", "padding": padding}
    return nn.Conv2d(cin, cout, kernel, stride, dilation=dilation, group=group, has_bias=has_bias,
                     weight_init=HeUniform(), **pad)


class ChannelGate(nn.Cell):
    """AvgPool (kernel = stride = H) -> FC C/r -> BN1d -> ReLU -> FC C; output N x C x 1 x 1."""

    def __init__(self, channels: int, spatial_size: int, reduction: int) -> None:
        super().__init__()
        hidden = channels // reduction
        self.pool = nn.AvgPool2d(spatial_size, spatial_size, pad_mode="valid")  # kernel from input_size: exact at 224
        self.flatten = nn.Flatten()
        self.fc1 = nn.Dense(channels, hidden, weight_init=Normal(0.01), bias_init="zeros")
        self.bn = nn.BatchNorm1d(hidden, momentum=0.9)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(hidden, channels, weight_init=Normal(0.01), bias_init="zeros")

    def construct(self, x: Tensor) -> Tensor:
        y = self.flatten(self.pool(x))  # N x C
        y = self.fc2(self.relu(self.bn(self.fc1(y))))  # N x C
        return y.reshape(y.shape[0], y.shape[1], 1, 1)  # N x C x 1 x 1


class SpatialGate(nn.Cell):
    """1x1 C/r -> BN -> ReLU -> n x [dilated 3x3 -> BN -> ReLU] -> 1x1 to one map; N x 1 x H x W."""

    def __init__(self, channels: int, reduction: int, dilation: int, num_dilated: int) -> None:
        super().__init__()
        hidden = channels // reduction
        layers = [_conv(channels, hidden, 1, has_bias=True), nn.BatchNorm2d(hidden, momentum=0.9), nn.ReLU()]
        for _ in range(num_dilated):
            layers += [_conv(hidden, hidden, 3, has_bias=True, padding=dilation, dilation=dilation),
                       nn.BatchNorm2d(hidden, momentum=0.9), nn.ReLU()]
        layers.append(_conv(hidden, 1, 1, has_bias=True))
        self.body = nn.SequentialCell(layers)

    def construct(self, x: Tensor) -> Tensor:
        return self.body(x)


class BAM(nn.Cell):
    """Bottleneck attention between stages: x * (1 + sigmoid(channel_gate * spatial_gate))."""

    def __init__(self, channels: int, *, spatial_size: int, reduction: int = 16, dilation: int = 4,
                 num_dilated: int = 2) -> None:
        super().__init__()
        self.channel_gate = ChannelGate(channels, spatial_size, reduction)
        self.spatial_gate = SpatialGate(channels, reduction, dilation, num_dilated)
        self.sigmoid = nn.Sigmoid()

    def construct(self, x: Tensor) -> Tensor:
        att = 1 + self.sigmoid(self.channel_gate(x) * self.spatial_gate(x))  # N x C x H x W
        return att * x


class GatherExcite(nn.Cell):
    """Gather-Excite on the residual branch: x * sigmoid(mlp(gather(x))).

    extra=False: parameter-free global mean. extra=True: [strided full 3x3 conv + BN when
    ``downsample``] -> depthwise conv whose kernel covers the whole map -> BN (1 x 1 out).
    """

    def __init__(self, channels: int, *, spatial_size: int, extra: bool = True, mlp: bool = True,
                 reduction: int = 16, downsample: bool = False) -> None:
        super().__init__()
        self.extra = extra
        if extra:
            layers: list[nn.Cell] = []
            if downsample:
                layers += [_conv(channels, channels, 3, stride=2, padding="same"), nn.BatchNorm2d(channels)]
                spatial_size = same_size(spatial_size, 2)
            layers += [_conv(channels, channels, spatial_size, group=channels, padding="valid"),
                       nn.BatchNorm2d(channels)]
            self.gather = nn.SequentialCell(layers)
        self.mlp = nn.SequentialCell([
            _conv(channels, channels // reduction, 1), nn.ReLU(), _conv(channels // reduction, channels, 1),
        ]) if mlp else nn.Identity()
        self.sigmoid = nn.Sigmoid()

    def construct(self, x: Tensor) -> Tensor:
        if self.extra:
            g = self.gather(x)  # N x C x 1 x 1
        else:
            g = ops.mean(x, (2, 3), keep_dims=True)  # N x C x 1 x 1
        return x * self.sigmoid(self.mlp(g))


_ATTN: dict[str, Callable[..., nn.Cell]] = {"bam": BAM, "ge": GatherExcite}


def create_attn(kind: str | None, channels: int, **kwargs) -> nn.Cell | None:
    """Build attention block ``kind`` ('bam' | 'ge') for ``channels``; None/'' gives None."""
    if not kind:
        return None
    if kind not in _ATTN:
        raise ConfigError("model.attn", f"unknown attention {kind!r}; available: {', '.join(sorted(_ATTN))}")
    return _ATTN[kind](channels, **kwargs)
