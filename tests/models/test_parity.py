"""MindSpore vs torch parity for every registered model, through the checkpoint converter.

For each model: a torch network with randomised weights (BatchNorm affine parameters
and running statistics included, so a gamma/beta or mean/variance swap would show) is
converted with :func:`mindzoo.convert.torch_to_mindspore` and loaded into the MindSpore
network; both run the same batch in eval mode (CPU, fp32) and the logits must agree to
1e-4. The MindSpore parameters converted back must equal the torch ``state_dict`` bitwise.
"""

import pytest

pytestmark = [pytest.mark.runtime, pytest.mark.parity]

import mindspore as ms  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mindzoo import convert  # noqa: E402
from mindzoo.archs import MODELS  # noqa: E402
from mindzoo.registry import create_model, list_models  # noqa: E402

NAMES = list_models("torch")
# Cheap sizes every model accepts: SPP needs an exact conv map (112), Inception-v4 a side >= 75.
SIZES = {"googlenet": 32, "sppnet": 112, "inception_v4": 75}
TOLERANCE = 1e-4


@pytest.fixture(scope="module", autouse=True)
def _pynative():
    ms.set_context(mode=ms.PYNATIVE_MODE)


def _images(batch: int, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((batch, 3, size, size), dtype=np.float32)


def _randomise_batch_norms(net: torch.nn.Module, size: int) -> None:
    """Random gamma/beta, running statistics from a calibration batch: a well-conditioned random net.

    Residual-branch BNs (``conv3.bn``) get a smaller gamma so a 50-layer random ResNet stays
    contractive; otherwise fp32 rounding alone (torch fp32 vs fp64) reaches ~1e-4 in the logits.
    BatchNorm1d (heads, 1 value per sample) gets random statistics: 8 samples would give tiny variances."""
    gen = torch.Generator().manual_seed(0)
    bns = [(n, m) for n, m in net.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for name, bn in bns:
            low = 0.2 if name.endswith("conv3.bn") else 0.8
            bn.weight.copy_(torch.rand(bn.weight.shape, generator=gen) * 0.4 + low)
            bn.bias.copy_(torch.randn(bn.bias.shape, generator=gen) * 0.1)
            if isinstance(bn, torch.nn.BatchNorm1d):
                bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=gen) * 0.1)
                bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=gen) + 0.5)
            else:
                bn.momentum = None  # cumulative average over the calibration batch
                bn.train()
        net(torch.from_numpy(_images(8, size, seed=1)))
        for _, bn in bns:
            bn.running_var.clamp_(min=0.5)  # 1x1 maps (reduced sizes) give near-zero variances from 8 samples
            bn.eval()
            bn.num_batches_tracked.zero_()


@pytest.mark.parametrize("name", NAMES)
def test_logits_match_after_conversion(name):
    size = SIZES.get(name, 64)
    torch.manual_seed(0)
    tnet = create_model(name, framework="torch", num_classes=10, input_size=size).eval()
    _randomise_batch_norms(tnet, size)
    msnet = create_model(name, num_classes=10, input_size=size)
    msnet.set_train(False)
    state = tnet.state_dict()
    convert.load_arrays_into_mindspore(msnet, convert.torch_to_mindspore(state, name))

    x = _images(2, size, seed=0)
    with torch.no_grad():
        expected = tnet(torch.from_numpy(x)).numpy()
    actual = msnet(ms.Tensor(x)).asnumpy()
    diff = float(np.abs(actual - expected).max())
    print(f"parity {name}@{size}: max abs diff {diff:.3e} (max |logit| {np.abs(expected).max():.3f})")
    assert actual.shape == expected.shape == (2, 10) and np.isfinite(actual).all()
    assert diff <= TOLERANCE

    assert sum(p.numel() for p in tnet.parameters()) == sum(p.size for p in msnet.trainable_params())
    back = convert.mindspore_to_torch(msnet, name)  # torch -> MindSpore -> torch
    assert set(back) == set(state)
    unequal = [k for k in state if not (back[k].dtype == state[k].dtype and torch.equal(back[k], state[k]))]
    assert unequal == []


def test_every_catalogue_model_is_covered():
    assert set(NAMES) == set(MODELS) == set(list_models("mindspore"))
