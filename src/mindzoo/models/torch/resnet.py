"""ResNet-50 v1.5 with optional BAM or Gather-Excite attention, PyTorch.

ResNet: "Deep Residual Learning for Image Recognition", https://arxiv.org/abs/1512.03385
BAM: https://arxiv.org/abs/1807.06514 (ModelZoo ``research/cv/resnet50_bam``)
GENet: https://arxiv.org/abs/1810.12348 (ModelZoo ``research/cv/GENet_Res50``)

A port of :mod:`mindzoo.models.mindspore.resnet` with the same module and
parameter names: the stride sits on the 3x3 conv (v1.5); attention is plugged in
by :func:`~mindzoo.models.torch.attention.create_attn` between stages (BAM) or
inside each bottleneck (GE). Padding style ('same' is TF-style, see
:mod:`.layers`), BatchNorm momentum/eps, head pooling and FC init come from each
variant's :class:`~mindzoo.archs.ResNetArch`.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import Tensor, nn

from mindzoo.archs import BatchNormConfig, ResNetArch, get_model_config, resnet_stage_sizes
from mindzoo.models.torch.attention import create_attn
from mindzoo.models.torch.layers import MaxPool2dSame, batch_norm2d, conv2d
from mindzoo.registry import register_model

__all__ = ["Bottleneck", "ResNet", "genet_res50_theta", "genet_res50_theta_minus", "genet_res50_theta_plus",
           "resnet50", "resnet50_bam"]


class ConvBn(nn.Module):
    """Conv (no bias, HeUniform) -> BatchNorm2d -> optional ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, *, explicit_padding: bool,
                 bn: BatchNormConfig, act: bool = True) -> None:
        super().__init__()
        self.conv = conv2d(cin, cout, kernel, stride, kernel // 2 if explicit_padding else "same")
        nn.init.kaiming_uniform_(self.conv.weight, a=0, mode="fan_in", nonlinearity="leaky_relu")  # HeUniform()
        self.bn = batch_norm2d(cout, bn)
        self.act = nn.ReLU() if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 x4, optional attention on the branch, + shortcut, ReLU."""

    def __init__(self, cin: int, planes: int, stride: int, arch: ResNetArch, attn: nn.Module | None) -> None:
        super().__init__()
        cout = planes * arch.expansion
        conv = {"explicit_padding": arch.explicit_padding, "bn": arch.block_bn}
        self.conv1 = ConvBn(cin, planes, 1, **conv)
        self.conv2 = ConvBn(planes, planes, 3, stride, **conv)
        self.conv3 = ConvBn(planes, cout, 1, act=False, **conv)
        self.attn = attn if attn is not None else nn.Identity()
        needs_proj = stride != 1 or cin != cout
        self.shortcut = ConvBn(cin, cout, 1, stride, act=False, **conv) if needs_proj else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv3(self.conv2(self.conv1(x)))  # N x 4*planes x H/s x W/s
        return self.relu(self.attn(out) + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet-50 v1.5 body; ``input_size`` fixes the head pool and attention kernels (exact at 224)."""

    def __init__(self, arch: ResNetArch, *, num_classes: int = 1000, input_size: int = 224,
                 in_channels: int = 3) -> None:
        super().__init__()
        sizes = resnet_stage_sizes(input_size)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["stem"] = nn.Sequential(
            ConvBn(in_channels, arch.stem_width, 7, 2, explicit_padding=arch.explicit_padding, bn=arch.stem_bn),
            MaxPool2dSame(3, 2),
        )
        cin = arch.stem_width
        for i, (depth, planes) in enumerate(zip(arch.depths, arch.widths)):
            layers[f"layer{i + 1}"] = self._make_stage(arch, i, cin, planes, depth, sizes[i])
            cin = planes * arch.expansion
            if arch.attn is not None and arch.attn.placement == "stage" and i in arch.attn.stages:
                layers[f"attn{i + 1}"] = create_attn(arch.attn.kind, cin, spatial_size=sizes[i],
                                                     **arch.attn.stage_kwargs(i))
        self.features = nn.Sequential(layers)
        self.num_features = cin
        self.global_mean = arch.head_pool == "mean"
        # The recipe's AvgPool 7x7/7; its kernel follows input_size so reduced sizes still pool globally.
        self.pool = nn.AvgPool2d(sizes[-1], sizes[-1])
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(cin, num_classes)
        if arch.fc_init == "normal":
            nn.init.normal_(self.fc.weight, std=0.01)
        else:
            nn.init.trunc_normal_(self.fc.weight, std=0.01, a=-2.0, b=2.0)  # MindSpore TruncatedNormal: cut at ±2
        nn.init.zeros_(self.fc.bias)

    @staticmethod
    def _make_stage(arch: ResNetArch, index: int, cin: int, planes: int, depth: int, size: int) -> nn.Module:
        blocks = []
        for j in range(depth):
            attn = None
            if arch.attn is not None and arch.attn.placement == "block" and index in arch.attn.stages:
                attn = create_attn(arch.attn.kind, planes * arch.expansion, spatial_size=size,
                                   **arch.attn.stage_kwargs(index))
            stride = 2 if index > 0 and j == 0 else 1
            blocks.append(Bottleneck(cin, planes, stride, arch, attn))
            cin = planes * arch.expansion
        return nn.Sequential(*blocks)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_stages(self, x: Tensor) -> OrderedDict[str, Tensor]:
        """Output of every named stage (for shape checks)."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        for name, module in self.features.named_children():
            x = out[name] = module(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # N x 2048 x 7 x 7
        if self.global_mean:
            x = x.mean(dim=(2, 3))  # N x 2048
        else:
            x = self.flatten(self.pool(x))  # N x 2048
        return self.fc(x)  # N x num_classes


def _create_resnet(name: str, *, num_classes: int, input_size: int, **kwargs) -> ResNet:
    return ResNet(get_model_config(name).arch, num_classes=num_classes, input_size=input_size, **kwargs)


@register_model
def resnet50(*, num_classes: int = 1000, input_size: int = 224, **kwargs) -> ResNet:
    """Plain ResNet-50 v1.5 as in the BAM recipe's body (BN 0.9 / 1e-5, explicit padding)."""
    return _create_resnet("resnet50", num_classes=num_classes, input_size=input_size, **kwargs)


@register_model
def resnet50_bam(*, num_classes: int = 1000, input_size: int = 224, **kwargs) -> ResNet:
    """ResNet-50 v1.5 with BAM after layer1-3 (reduction 16, dilation 4)."""
    return _create_resnet("resnet50_bam", num_classes=num_classes, input_size=input_size, **kwargs)


@register_model
def genet_res50_theta_minus(*, num_classes: int = 1000, input_size: int = 224, **kwargs) -> ResNet:
    """GE-θ⁻: parameter-free global-mean gather, no MLP (recipe config3)."""
    return _create_resnet("genet_res50_theta_minus", num_classes=num_classes, input_size=input_size, **kwargs)


@register_model
def genet_res50_theta(*, num_classes: int = 1000, input_size: int = 224, **kwargs) -> ResNet:
    """GE-θ: depthwise global gather (extra=True), no MLP (recipe config2)."""
    return _create_resnet("genet_res50_theta", num_classes=num_classes, input_size=input_size, **kwargs)


@register_model
def genet_res50_theta_plus(*, num_classes: int = 1000, input_size: int = 224, **kwargs) -> ResNet:
    """GE-θ⁺: depthwise global gather and excite MLP (recipe config1, the default)."""
    return _create_resnet("genet_res50_theta_plus", num_classes=num_classes, input_size=input_size, **kwargs)
