"""ZFNet and SPPNet (ModelZoo ``research/cv/SPPNet``), PyTorch.

ZFNet: "Visualizing and Understanding Convolutional Networks", https://arxiv.org/abs/1311.2901
SPPNet: "Spatial Pyramid Pooling in Deep Convolutional Networks", https://arxiv.org/abs/1406.4729

A port of :mod:`mindzoo.models.mindspore.zfnet` with the same module and parameter
names: five biased convs (MindSpore LRN + MaxPool after the first two), then either
MaxPool + flatten (zfnet) or a spatial pyramid pool with levels 6, 3, 2, 1 (sppnet),
then three FCs. No BatchNorm. torch's default initialisers equal MindSpore 2.x's
defaults (HeUniform a=√5, uniform bias), which the recipe uses.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from mindzoo.archs import ZFNetArch, get_data_config, get_model_config, spp_window, valid_size, zfnet_map_size
from mindzoo.models.torch.layers import LRN, conv2d
from mindzoo.registry import register_model

__all__ = ["SpatialPyramidPool", "ZFNet", "sppnet", "zfnet"]


class ConvReLU(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, padding) -> None:
        super().__init__()
        self.conv = conv2d(in_channels, out_channels, kernel, stride, padding, bias=True)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv(x))


class LRNPool(nn.Module):
    """TF-style LRN with MindSpore's P.LRN defaults, then MaxPool 'valid'."""

    def __init__(self, lrn: tuple[int, float, float, float], kernel: int, stride: int) -> None:
        super().__init__()
        self.lrn = LRN(*lrn)
        self.pool = nn.MaxPool2d(kernel, stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.lrn(x))


class SppLevel(nn.Module):
    """One pyramid level: optional zero pad, MaxPool window, flatten in (C, h, w) order."""

    def __init__(self, pad: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.padding = nn.ZeroPad2d(pad) if pad else nn.Identity()
        self.pool = nn.MaxPool2d(kernel, stride)
        self.flatten = nn.Flatten()

    def forward(self, x: Tensor) -> Tensor:
        return self.flatten(self.pool(self.padding(x)))


class SpatialPyramidPool(nn.Module):
    """SPP whose windows are fixed per conv-map size; the branch is picked from the input height."""

    def __init__(self, levels: tuple[int, ...], map_sizes: tuple[int, ...], arch: ZFNetArch) -> None:
        super().__init__()
        self.levels = levels
        self.map_sizes = tuple(dict.fromkeys(map_sizes))
        self.pyramids = nn.ModuleList([
            nn.ModuleList([SppLevel(*spp_window(size, bins, arch)) for bins in levels]) for size in self.map_sizes
        ])

    def num_features(self, channels: int) -> int:
        return channels * sum(n * n for n in self.levels)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[2]
        if size not in self.map_sizes:
            raise ValueError("SpatialPyramidPool: conv map size not among those the model was built for")
        pyramid = self.pyramids[self.map_sizes.index(size)]
        return torch.cat([level(x) for level in pyramid], dim=1)  # N x 256*(36+9+4+1)


class ZFNet(nn.Module):
    """ZFNet / SPPNet. ``input_sizes``: every input side the model must accept (SPP only: more than one)."""

    def __init__(self, arch: ZFNetArch, *, num_classes: int = 1000, input_sizes: tuple[int, ...] = (224,),
                 drop_rate: float | None = None, in_channels: int = 3) -> None:
        super().__init__()
        drop_rate = arch.drop_rate if drop_rate is None else drop_rate
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = in_channels
        for i, conv in enumerate(arch.convs, start=1):
            layers[f"conv{i}"] = ConvReLU(channels, conv.out_channels, conv.kernel, conv.stride, conv.padding)
            channels = conv.out_channels
            if conv.lrn_pool:
                layers[f"pool{i}"] = LRNPool(arch.lrn, *arch.pool)
        map_sizes = tuple(zfnet_map_size(s, arch) for s in input_sizes)
        if arch.spp_levels is None:
            pooled = valid_size(map_sizes[0], *arch.pool)
            layers["pool5"] = nn.Sequential(nn.MaxPool2d(*arch.pool), nn.Flatten())
            num_features = channels * pooled * pooled  # 9216 = 256 * 6 * 6 at 224; follows input_size for CPU runs
        else:
            layers["spp"] = SpatialPyramidPool(arch.spp_levels, map_sizes, arch)
            num_features = layers["spp"].num_features(channels)
        self.features = nn.Sequential(layers)
        dims = (num_features, *arch.fc_dims)
        self.fcs = nn.ModuleList([nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])])
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(p=drop_rate)  # one module shared by both hidden FCs, as the recipe
        self.classifier = nn.Linear(dims[-1], num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward_stages(self, x: Tensor) -> OrderedDict[str, Tensor]:
        """Output of every named stage (for shape checks)."""
        out: OrderedDict[str, Tensor] = OrderedDict()
        for name, module in self.features.named_children():
            x = out[name] = module(x)
        return out

    def forward(self, x: Tensor) -> Tensor:
        x = self.features(x)  # N x 9216 (zfnet) or N x 12800 (sppnet)
        for fc in self.fcs:
            x = self.dropout(self.relu(fc(x)))  # N x 4096
        return self.classifier(x)  # N x num_classes


def _create_zfnet(name: str, *, num_classes: int, input_sizes: tuple[int, ...], **kwargs) -> ZFNet:
    return ZFNet(get_model_config(name).arch, num_classes=num_classes, input_sizes=input_sizes, **kwargs)


@register_model
def zfnet(*, num_classes: int = 1000, input_size: int = 224, **kwargs) -> ZFNet:
    """ZFNet; fc1's width follows ``input_size`` (9216 at 224)."""
    return _create_zfnet("zfnet", num_classes=num_classes, input_sizes=(input_size,), **kwargs)


@register_model
def sppnet(*, num_classes: int = 1000, input_size: int = 224, extra_input_sizes: tuple[int, ...] | None = None,
           **kwargs) -> ZFNet:
    """SPPNet (single- and multi-size recipes); accepts ``input_size`` and ``extra_input_sizes``
    (default: the data config's extra train sizes, i.e. 180)."""
    if extra_input_sizes is None:
        extra_input_sizes = get_data_config(get_model_config("sppnet").data_config).extra_train_sizes
    sizes = (input_size, *extra_input_sizes)
    return _create_zfnet("sppnet", num_classes=num_classes, input_sizes=sizes, **kwargs)
