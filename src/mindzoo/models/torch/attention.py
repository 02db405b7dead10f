"""Attention blocks plugged into the shared ResNet body, chosen by a string key (PyTorch).

BAM: "BAM: Bottleneck Attention Module", https://arxiv.org/abs/1807.06514 (ModelZoo ``research/cv/resnet50_bam``)
GE: "Gather-Excite", https://arxiv.org/abs/1810.12348 (ModelZoo ``research/cv/GENet_Res50``)

A port of :mod:`mindzoo.models.mindspore.attention` with the same module and
parameter names. ``create_attn("bam", channels, spatial_size=56)`` and
``create_attn("ge", channels, spatial_size=56, extra=True, mlp=True)`` return a
module mapping ``x`` (N x C x H x W) to an attended tensor of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from mindzoo.archs import BatchNormConfig, same_size
from mindzoo.errors import ConfigError
from mindzoo.models.torch.layers import batch_norm1d, batch_norm2d, conv2d

__all__ = ["BAM", "GatherExcite", "create_attn"]

_BN = BatchNormConfig(0.9, 1e-5)  # MindSpore BatchNorm defaults, as the recipes


def _conv(cin: int, cout: int, kernel: int, *, stride: int = 1, has_bias: bool = False, group: int = 1,
          padding: int | str = 0, dilation: int = 1) -> nn.Conv2d:
    """HeUniform conv (fan_in, a=0); an int padding is explicit, a string is the pad mode.

    A bias keeps torch's default initialiser (MindSpore 2.x's default is the same uniform)."""
    conv = conv2d(cin, cout, kernel, stride, padding, bias=has_bias, dilation=dilation, groups=group)
    nn.init.kaiming_uniform_(conv.weight, a=0, mode="fan_in", nonlinearity="leaky_relu")  # MindSpore HeUniform()
    return conv


class ChannelGate(nn.Module):
    """AvgPool (kernel = stride = H) -> FC C/r -> BN1d -> ReLU -> FC C; output N x C x 1 x 1."""

    def __init__(self, channels: int, spatial_size: int, reduction: int) -> None:
        super().__init__()
        hidden = channels // reduction
        self.pool = nn.AvgPool2d(spatial_size, spatial_size)  # kernel from input_size: exact at 224
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(channels, hidden)
        self.bn = batch_norm1d(hidden, _BN)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, channels)
        for fc in (self.fc1, self.fc2):
            nn.init.normal_(fc.weight, std=0.01)
            nn.init.zeros_(fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        y = self.flatten(self.pool(x))  # N x C
        y = self.fc2(self.relu(self.bn(self.fc1(y))))  # N x C
        return y.reshape(y.shape[0], y.shape[1], 1, 1)  # N x C x 1 x 1


class SpatialGate(nn.Module):
    """1x1 C/r -> BN -> ReLU -> n x [dilated 3x3 -> BN -> ReLU] -> 1x1 to one map; N x 1 x H x W."""

    def __init__(self, channels: int, reduction: int, dilation: int, num_dilated: int) -> None:
        super().__init__()
        hidden = channels // reduction
        layers = [_conv(channels, hidden, 1, has_bias=True), batch_norm2d(hidden, _BN), nn.ReLU()]
        for _ in range(num_dilated):
            layers += [_conv(hidden, hidden, 3, has_bias=True, padding=dilation, dilation=dilation),
                       batch_norm2d(hidden, _BN), nn.ReLU()]
        layers.append(_conv(hidden, 1, 1, has_bias=True))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class BAM(nn.Module):
    """Bottleneck attention between stages: x * (1 + sigmoid(channel_gate * spatial_gate))."""

    def __init__(self, channels: int, *, spatial_size: int, reduction: int = 16, dilation: int = 4,
                 num_dilated: int = 2) -> None:
        super().__init__()
        self.channel_gate = ChannelGate(channels, spatial_size, reduction)
        self.spatial_gate = SpatialGate(channels, reduction, dilation, num_dilated)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        att = 1 + self.sigmoid(self.channel_gate(x) * self.spatial_gate(x))  # N x C x H x W
        return att * x


class GatherExcite(nn.Module):
    """Gather-Excite on the residual branch: x * sigmoid(mlp(gather(x))).

    extra=False: parameter-free global mean. extra=True: [strided full 3x3 conv + BN when
    ``downsample``] -> depthwise conv whose kernel covers the whole map -> BN (1 x 1 out).
    """

    def __init__(self, channels: int, *, spatial_size: int, extra: bool = True, mlp: bool = True,
                 reduction: int = 16, downsample: bool = False) -> None:
        super().__init__()
        self.extra = extra
        if extra:
            layers: list[nn.Module] = []
            if downsample:
                layers += [_conv(channels, channels, 3, stride=2, padding="same"), batch_norm2d(channels, _BN)]
                spatial_size = same_size(spatial_size, 2)
            layers += [_conv(channels, channels, spatial_size, group=channels, padding="valid"),
                       batch_norm2d(channels, _BN)]
            self.gather = nn.Sequential(*layers)
        self.mlp = nn.Sequential(
            _conv(channels, channels // reduction, 1), nn.ReLU(), _conv(channels // reduction, channels, 1),
        ) if mlp else nn.Identity()
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        if self.extra:
            g = self.gather(x)  # N x C x 1 x 1
        else:
            g = x.mean(dim=(2, 3), keepdim=True)  # N x C x 1 x 1
        return x * self.sigmoid(self.mlp(g))


_ATTN: dict[str, Callable[..., nn.Module]] = {"bam": BAM, "ge": GatherExcite}


def create_attn(kind: str | None, channels: int, **kwargs) -> nn.Module | None:
    """Build attention block ``kind`` ('bam' | 'ge') for ``channels``; None/'' gives None."""
    if not kind:
        return None
    if kind not in _ATTN:
        raise ConfigError("model.attn", f"unknown attention {kind!r}; available: {', '.join(sorted(_ATTN))}")
    return _ATTN[kind](channels, **kwargs)
