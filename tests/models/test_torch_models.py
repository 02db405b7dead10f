"""Every registered torch model: forward, gradients, exact parameter counts, recipe settings.

Parametrized over ``list_models("torch")`` (timm style). Parameter counts are taken at
full size on the meta device (no memory, no init) and compared with :data:`mindzoo.archs.MODELS`.
"""

import pytest

pytestmark = [pytest.mark.runtime]

import torch  # noqa: E402

from mindzoo.archs import MODELS  # noqa: E402
from mindzoo.errors import ConfigError  # noqa: E402
from mindzoo.models.torch.attention import create_attn  # noqa: E402
from mindzoo.registry import create_model, list_models  # noqa: E402

NAMES = list_models("torch")
REDUCED = {"googlenet": 32, "sppnet": 112, "inception_v4": 75}


def _images(batch: int, size: int) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def test_registry_matches_the_catalogue_and_mindspore():
    assert set(NAMES) == set(MODELS) == set(list_models("mindspore"))


@pytest.mark.parametrize("name", NAMES)
def test_forward_reduced_size(name):
    size = REDUCED.get(name, 64)
    net = create_model(name, framework="torch", num_classes=7, input_size=size).eval()
    with torch.no_grad():
        out = net(_images(2, size))
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    if name == "inception_v4":  # the head ends in LogSoftmax
        torch.testing.assert_close(out.exp().sum(dim=1), torch.ones(2), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_is_exact(name):
    with torch.device("meta"):
        net = create_model(name, framework="torch")
    assert _count(net) == MODELS[name].expected_params(1000)


def test_googlenet_cifar10_head_parameter_count():
    with torch.device("meta"):
        net = create_model("googlenet", framework="torch", num_classes=10)
    assert _count(net) == MODELS["googlenet"].expected_params(10) == 5_610_154


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_backward_reaches_every_parameter(name):
    size = REDUCED.get(name, 64)
    net = create_model(name, framework="torch", num_classes=5, input_size=size).train()
    loss = torch.nn.functional.cross_entropy(net(_images(4, size)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert torch.isfinite(loss)
    assert [n for n, p in net.named_parameters() if p.grad is None] == []


def test_size_limits_raise_config_errors():
    with pytest.raises(ConfigError, match="^model.input_size: SPP level 6 is not exact"):
        create_model("sppnet", framework="torch", input_size=64)
    with pytest.raises(ConfigError, match="^model.input_size: must be >= 75"):
        create_model("inception_v4", framework="torch", input_size=64)
    net = create_model("sppnet", framework="torch", input_size=112, extra_input_sizes=()).eval()
    with pytest.raises(ValueError, match="conv map size"), torch.no_grad():
        net(_images(1, 224))


def test_sppnet_serves_both_recipe_sizes():
    net = create_model("sppnet", framework="torch", num_classes=3, input_size=224).eval()
    with torch.no_grad():
        assert [tuple(net(_images(1, s)).shape) for s in (224, 180)] == [(1, 3), (1, 3)]


def test_recipe_settings_reach_the_modules():
    def bn_settings(net):  # torch momentum is 1 - MindSpore momentum
        return {(round(1 - m.momentum, 6), m.eps) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)}

    with torch.device("meta"):
        bam = create_model("resnet50_bam", framework="torch", input_size=64)
        ge = create_model("genet_res50_theta_plus", framework="torch", input_size=64)
        goog = create_model("googlenet", framework="torch")
        v4 = create_model("inception_v4", framework="torch")
        zf = create_model("zfnet", framework="torch", input_size=64)
    assert bn_settings(bam) == {(0.9, 1e-5)}
    assert bn_settings(ge) == {(0.95, 1e-4), (0.997, 1e-5), (0.9, 1e-5)}
    assert bn_settings(goog) == {(0.9, 1e-3)}
    assert (round(1 - v4.head_bn.momentum, 6), v4.head_bn.eps, v4.dropout.p) == (0.1, 1e-3, 0.8)
    assert zf.dropout.p == 0.35
    lrn = zf.features.pool1.lrn
    assert (lrn.depth_radius, lrn.bias, lrn.alpha, lrn.beta) == (5, 1.0, 1.0, 0.5)
    assert tuple(goog.features.inception3a.branch3[1].conv.kernel_size) == (3, 3)  # the "5x5" branch quirk


def test_attention_factory():
    assert create_attn(None, 64) is None
    ge = create_attn("ge", 256, spatial_size=56, extra=True, mlp=True, downsample=True)
    assert type(create_attn("bam", 256, spatial_size=56)).__name__ == "BAM"
    assert ge.gather[2].kernel_size == (28, 28)  # 56 -> strided conv -> 28 -> global depthwise kernel
    with pytest.raises(ConfigError, match="^model.attn: unknown attention 'se'; available: bam, ge$"):
        create_attn("se", 64)
