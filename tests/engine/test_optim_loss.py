"""Optimizers, parameter groups, label smoothing and loss scaling against the recipes' math (§0).

The reference updates are written out here in numpy, from modelzoo_facts.md §0:
Momentum ``v = mu*v + g; w -= lr*v`` with coupled L2; RMSProp
``s = rho*s + (1-rho)*g^2; m = mu*m + lr*g/sqrt(s + eps); w -= m`` (eps inside the root).
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.runtime

import mindspore as ms  # noqa: E402
from mindspore import Parameter, Tensor, nn  # noqa: E402

from mindzoo.engine.loss import DynamicLossScale, loss_scale_plan, smoothing_values  # noqa: E402
from mindzoo.engine.mindspore import steps  # noqa: E402
from mindzoo.engine.optim import param_groups  # noqa: E402
from mindzoo.recipes import load_recipe  # noqa: E402

ms.set_device("CPU")


class TwoParams(nn.Cell):
    """A weight and a BN-style ``gamma``: the no-decay rules tell them apart by name."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = Parameter(Tensor(np.array([1.0, -2.0, 0.5], np.float32)), name="layer.weight")
        self.gamma = Parameter(Tensor(np.array([1.0, 1.0], np.float32)), name="bn.gamma")

    def construct(self, x: Tensor) -> Tensor:
        return (self.weight * x).sum() + self.gamma.sum()


GRADS = [(np.array([0.1, -0.2, 0.3], np.float32), np.array([0.5, -0.5], np.float32)),
         (np.array([-0.3, 0.1, 0.2], np.float32), np.array([0.25, 0.0], np.float32)),
         (np.array([0.05, 0.4, -0.1], np.float32), np.array([-0.5, 1.0], np.float32))]


def _run(optimizer: nn.Optimizer, net: TwoParams, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    for gw, gg in GRADS:
        optimizer((Tensor(gw * scale), Tensor(gg * scale)))
    return net.weight.asnumpy(), net.gamma.asnumpy()


def test_no_decay_rules_match_by_suffix_or_substring():
    names = ["conv.weight", "conv.bias", "bn.gamma", "bn.beta", "gate.beta_proj.weight", "biased.weight"]
    suffix = param_groups(names, load_recipe("resnet50_bam").optim)
    substring = param_groups(names, load_recipe("genet_res50_theta").optim)
    assert [(g.names, g.weight_decay) for g in suffix] == [
        (("conv.weight", "gate.beta_proj.weight", "biased.weight"), 1e-4), (("conv.bias", "bn.gamma", "bn.beta"), 0.0)]
    assert [(g.names, g.weight_decay) for g in substring] == [
        (("conv.weight",), 1e-4), (("conv.bias", "bn.gamma", "bn.beta", "gate.beta_proj.weight", "biased.weight"), 0.0)]
    everything = param_groups(names, load_recipe("googlenet_cifar10").optim)  # rule none: all decayed
    assert [(g.names, g.weight_decay) for g in everything] == [(tuple(names), 5e-4)]


@pytest.mark.parametrize("loss_scale", [1.0, 1024.0])
def test_momentum_with_groups_lr_array_and_fixed_loss_scale(loss_scale):
    recipe = load_recipe("resnet50_bam", {"optim.weight_decay": "0.1"})  # suffix rule: bn.gamma not decayed
    lr = np.array([0.1, 0.05, 0.02], np.float32)
    net = TwoParams()
    opt = steps.build_optimizer(net, recipe.optim, lr, loss_scale)
    got_w, got_g = _run(opt, net, loss_scale)  # gradients arrive multiplied by the loss scale
    w, g = np.array([1.0, -2.0, 0.5]), np.array([1.0, 1.0])
    vw, vg = np.zeros(3), np.zeros(2)
    for i, (gw, gg) in enumerate(GRADS):
        vw = 0.9 * vw + (gw + 0.1 * w)
        vg = 0.9 * vg + gg
        w, g = w - lr[i] * vw, g - lr[i] * vg
    np.testing.assert_allclose(got_w, w, rtol=1e-5)
    np.testing.assert_allclose(got_g, g, rtol=1e-5)
    assert int(opt.global_step.asnumpy().reshape(-1)[0]) == 3


def test_rmsprop_puts_epsilon_inside_the_square_root():
    recipe = load_recipe("inception_v4", {"optim.weight_decay": "0.01"})  # substring rule: gamma not decayed
    lr = np.array([0.4, 0.3, 0.2], np.float32)
    net = TwoParams()
    got_w, got_g = _run(steps.build_optimizer(net, recipe.optim, lr, 1.0), net)
    w, g = np.array([1.0, -2.0, 0.5]), np.array([1.0, 1.0])
    sw, sg = np.ones(3), np.ones(2)  # MindSpore starts the mean square at 1
    mw, mg = np.zeros(3), np.zeros(2)
    for i, (gw, gg) in enumerate(GRADS):
        gw = gw + 0.01 * w
        sw, sg = 0.9 * sw + 0.1 * gw**2, 0.9 * sg + 0.1 * gg**2
        mw = 0.9 * mw + lr[i] * gw / np.sqrt(sw + 1.0)  # eps = 1.0 inside the root
        mg = 0.9 * mg + lr[i] * gg / np.sqrt(sg + 1.0)
        w, g = w - mw, g - mg
    np.testing.assert_allclose(got_w, w, rtol=1e-5)
    np.testing.assert_allclose(got_g, g, rtol=1e-5)
    one = TwoParams()
    steps.build_optimizer(one, recipe.optim, lr, 1.0)((Tensor(GRADS[0][0]), Tensor(GRADS[0][1])))
    s1 = 0.9 + 0.1 * (0.1 + 0.01) ** 2
    assert one.weight.asnumpy()[0] == pytest.approx(1.0 - 0.4 * 0.11 / np.sqrt(s1 + 1.0), rel=1e-6)
    assert one.weight.asnumpy()[0] != pytest.approx(1.0 - 0.4 * 0.11 / (np.sqrt(s1) + 1.0), rel=1e-6)


@pytest.mark.parametrize("convention, off", [("eps_over_c_minus_1", 0.1 / 4), ("eps_over_c", 0.1 / 5)])
def test_label_smoothing_off_values(convention, off):
    assert smoothing_values(0.1, 5, convention) == pytest.approx((0.9, off))
    logits = np.array([[2.0, 0.5, -1.0, 0.0, 1.0], [0.1, 0.2, 0.3, 0.4, 0.5]], np.float32)
    labels = np.array([0, 3], np.int32)
    target = np.full((2, 5), off)
    target[np.arange(2), labels] = 0.9
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = float(-(target * log_probs).sum(axis=1).mean())
    loss = steps.SmoothCrossEntropy(5, *smoothing_values(0.1, 5, convention))(Tensor(logits), Tensor(labels))
    assert float(loss.asnumpy()) == pytest.approx(expected, rel=1e-5)


def test_plain_loss_stays_finite_for_huge_logit_gaps():
    """MindSpore's sparse CE kernel returns inf here on CPU; the engine's dense form must not."""
    loss_fn = steps.build_loss(load_recipe("sppnet").loss, 3)
    loss = loss_fn(Tensor(np.array([[300.0, 0.0, 0.0]], np.float32)), Tensor(np.array([1], np.int32)))
    assert float(loss.asnumpy()) == pytest.approx(300.0)


def test_dynamic_loss_scale_follows_mindspores_update_cell():
    flags = [False, False, True, False, False, False, True, True, False, False, False, False]
    cell = nn.DynamicLossScaleUpdateCell(loss_scale_value=64.0, scale_factor=2, scale_window=3)
    scale = Parameter(Tensor(64.0, ms.float32), name="scale")
    ours = DynamicLossScale(64.0, 2.0, 3)
    for flag in flags:
        cell(scale, Tensor(flag))
        assert ours.update(flag) is (not flag)
        assert ours.scale == float(scale.asnumpy()), flags
    restored = DynamicLossScale()
    restored.load_state_dict(ours.state_dict())
    assert restored == ours


def test_loss_scale_plans_of_the_recipes():
    assert loss_scale_plan(load_recipe("zfnet").loss_scale).kind == "fixed"
    assert loss_scale_plan(load_recipe("zfnet").loss_scale).optimizer_scale == 1024
    assert loss_scale_plan(load_recipe("googlenet_cifar10").loss_scale).kind == "none"
    dynamic = loss_scale_plan(load_recipe("zfnet", {"loss_scale.kind": "dynamic"}).loss_scale)
    assert (dynamic.kind, dynamic.dynamic_init, dynamic.dynamic_factor, dynamic.dynamic_window) == (
        "dynamic", 65536.0, 2.0, 2000)
    assert dynamic.optimizer_scale == 1.0


class Linear(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Dense(4, 3)

    def construct(self, x: Tensor) -> Tensor:
        return self.dense(x)


@pytest.mark.parametrize("mode", [ms.GRAPH_MODE, ms.PYNATIVE_MODE])
def test_dynamic_loss_scale_skips_overflow_steps_on_cpu(mode):
    ms.set_context(mode=mode)
    recipe = load_recipe("zfnet", {"loss_scale.kind": "dynamic", "loss_scale.dynamic_init": "3e38",
                                   "optim.weight_decay": "0"})
    plan = loss_scale_plan(recipe.loss_scale)
    net = Linear()
    opt = steps.build_optimizer(net, recipe.optim, np.full(8, 0.1, np.float32), plan.optimizer_scale)
    scaler = DynamicLossScale(plan.dynamic_init, plan.dynamic_factor, plan.dynamic_window)
    step = steps.build_train_step(net, steps.build_loss(recipe.loss, 3), opt, plan, amp_level="O0",
                                  keep_batchnorm_fp32=False, world_size=1, scaler=scaler)
    x = Tensor(np.random.default_rng(0).random((2, 4), dtype=np.float32) * 100)
    y = Tensor(np.array([0, 2], np.int32))
    before = net.dense.weight.asnumpy().copy()
    step(x, y)  # 3e38 * gradients overflows: skipped, scale halves, the LR position does not move
    np.testing.assert_array_equal(net.dense.weight.asnumpy(), before)
    assert scaler.scale == pytest.approx(1.5e38) and int(opt.global_step.asnumpy()[0]) == 0
    scaler.scale = 1024.0
    step(x, y)
    assert not np.array_equal(net.dense.weight.asnumpy(), before)
    assert int(opt.global_step.asnumpy()[0]) == 1
    ms.set_context(mode=ms.PYNATIVE_MODE)


def test_a_head_lr_multiplier_scales_only_its_parameters_lr():
    """Fine-tuning's --head-lr-mult: a group of its own whose LR array is the schedule's times the multiplier."""
    recipe = load_recipe("resnet50_bam", {"optim.weight_decay": "0.1"})
    groups = param_groups(["layer.weight", "bn.gamma", "fc.weight"], recipe.optim, {"fc.weight": 10.0})
    assert [(g.names, g.weight_decay, g.lr_mult) for g in groups] == [
        (("layer.weight",), 0.1, 1.0), (("fc.weight",), 0.1, 10.0), (("bn.gamma",), 0.0, 1.0)]
    lr = np.array([0.1, 0.05, 0.02], np.float32)
    net = TwoParams()
    got_w, got_g = _run(steps.build_optimizer(net, recipe.optim, lr, 1.0, {"bn.gamma": 10.0}), net)
    w, g = np.array([1.0, -2.0, 0.5]), np.array([1.0, 1.0])
    vw, vg = np.zeros(3), np.zeros(2)
    for i, (gw, gg) in enumerate(GRADS):
        vw, vg = 0.9 * vw + (gw + 0.1 * w), 0.9 * vg + gg
        w, g = w - lr[i] * vw, g - 10 * lr[i] * vg
    np.testing.assert_allclose(got_w, w, rtol=1e-5)
    np.testing.assert_allclose(got_g, g, rtol=1e-5)
