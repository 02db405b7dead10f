"""The torch engine's math against MindSpore's and the recipes' formulas (modelzoo_facts.md §0).

Optimizers: the same gradients go through the torch optimizer and through
MindSpore's own ``nn.Momentum``/``nn.RMSProp`` (as the MindSpore engine builds
them, parameter groups and loss scale included) — the weights must agree; the
RMSProp update is also written out in numpy (eps inside the root). Loss: torch
smoothed CE against MindSpore's cell for both off-value conventions. Schedules
and loss scale: the backend's train step reads the shared LR array by its own
position, which a skipped overflow step does not advance. Cluster variables and
AMP selection are pure functions, tested without a GPU or a cluster.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.runtime

import mindspore as ms  # noqa: E402
import torch  # noqa: E402
from mindspore import Parameter, Tensor, nn  # noqa: E402

from mindzoo.engine.loss import DynamicLossScale, LossScalePlan, loss_scale_plan, smoothing_values  # noqa: E402
from mindzoo.engine.mindspore import steps as ms_steps  # noqa: E402
from mindzoo.engine.schedules import lr_array  # noqa: E402
from mindzoo.engine.torch import steps  # noqa: E402
from mindzoo.engine.torch.cluster import TorchClusterEnv  # noqa: E402
from mindzoo.errors import ConfigError  # noqa: E402
from mindzoo.recipes import load_recipe  # noqa: E402

ms.set_device("CPU")
torch.set_num_threads(1)

W0, GAMMA0 = np.array([1.0, -2.0, 0.5], np.float32), np.array([1.0, 1.0], np.float32)
GRADS = [(np.array([0.1, -0.2, 0.3], np.float32), np.array([0.5, -0.5], np.float32)),
         (np.array([-0.3, 0.1, 0.2], np.float32), np.array([0.25, 0.0], np.float32)),
         (np.array([0.05, 0.4, -0.1], np.float32), np.array([-0.5, 1.0], np.float32))]


class MsTwoParams(nn.Cell):
    """A weight and a BN-style ``gamma``: the no-decay rules tell them apart by name."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = Parameter(Tensor(W0), name="layer.weight")
        self.gamma = Parameter(Tensor(GAMMA0), name="bn.gamma")

    def construct(self, x: Tensor) -> Tensor:
        return (self.weight * x).sum() + self.gamma.sum()


def _mindspore(recipe, lr: np.ndarray, scale: float = 1.0, lr_mult=None) -> tuple[np.ndarray, np.ndarray]:
    net = MsTwoParams()
    optimizer = ms_steps.build_optimizer(net, recipe.optim, lr, scale, lr_mult)
    for gw, gg in GRADS:
        optimizer((Tensor(gw * scale), Tensor(gg * scale)))  # the MindSpore optimizer divides by its loss scale
    return net.weight.asnumpy(), net.gamma.asnumpy()


def _torch(recipe, lr: np.ndarray, lr_mult=None) -> tuple[np.ndarray, np.ndarray, torch.optim.Optimizer, dict]:
    named = {"layer.weight": torch.nn.Parameter(torch.from_numpy(W0.copy())),
             "bn.gamma": torch.nn.Parameter(torch.from_numpy(GAMMA0.copy()))}
    optimizer = steps.build_optimizer(named, recipe.optim, lr_mult)
    for i, (gw, gg) in enumerate(GRADS):
        named["layer.weight"].grad, named["bn.gamma"].grad = torch.from_numpy(gw), torch.from_numpy(gg)
        steps.set_lr(optimizer, float(lr[i]))
        optimizer.step()
    return named["layer.weight"].detach().numpy(), named["bn.gamma"].detach().numpy(), optimizer, named


@pytest.mark.parametrize("recipe_name", ["resnet50_bam", "genet_res50_theta", "googlenet_cifar10"])
def test_momentum_matches_mindspore_with_groups_and_loss_scale(recipe_name):
    recipe = load_recipe(recipe_name, {"optim.weight_decay": "0.1"})  # big enough that a wrong group shows
    lr = np.array([0.1, 0.05, 0.02], np.float32)
    want_w, want_g = _mindspore(recipe, lr, scale=1024.0)
    got_w, got_g, _, _ = _torch(recipe, lr)
    np.testing.assert_allclose(got_w, want_w, rtol=1e-5)
    np.testing.assert_allclose(got_g, want_g, rtol=1e-5)
    decayed = recipe.optim.no_decay.rule == "none"  # googlenet_cifar10 decays gamma too
    assert (got_g != _torch(load_recipe(recipe_name, {"optim.weight_decay": "0"}), lr)[1]).any() == decayed


@pytest.mark.parametrize("recipe_name", ["resnet50_bam", "inception_v4"])
def test_a_head_lr_multiplier_matches_mindspore(recipe_name):
    recipe = load_recipe(recipe_name, {"optim.weight_decay": "0.1"})
    lr, mult = np.array([0.1, 0.05, 0.02], np.float32), {"layer.weight": 10.0}
    want_w, want_g = _mindspore(recipe, lr, lr_mult=mult)
    got_w, got_g, _, _ = _torch(recipe, lr, lr_mult=mult)
    np.testing.assert_allclose(got_w, want_w, rtol=1e-5)
    np.testing.assert_allclose(got_g, want_g, rtol=1e-5)
    assert (got_w != _torch(recipe, lr)[0]).all()  # the multiplier did change the head's updates


def test_rmsprop_matches_mindspore_and_the_formula_with_epsilon_inside_the_root():
    recipe = load_recipe("inception_v4", {"optim.weight_decay": "0.01"})  # substring rule: gamma not decayed
    lr = np.array([0.4, 0.3, 0.2], np.float32)
    got_w, got_g, optimizer, named = _torch(recipe, lr)
    want_w, want_g = _mindspore(recipe, lr)
    np.testing.assert_allclose(got_w, want_w, rtol=1e-5)
    np.testing.assert_allclose(got_g, want_g, rtol=1e-5)
    w, g = W0.astype(np.float64), GAMMA0.astype(np.float64)
    sw, sg, mw, mg = np.ones(3), np.ones(2), np.zeros(3), np.zeros(2)  # mean square starts at 1
    for i, (gw, gg) in enumerate(GRADS):
        gw = gw + 0.01 * w
        sw, sg = 0.9 * sw + 0.1 * gw**2, 0.9 * sg + 0.1 * gg**2
        mw, mg = 0.9 * mw + lr[i] * gw / np.sqrt(sw + 1.0), 0.9 * mg + lr[i] * gg / np.sqrt(sg + 1.0)
        w, g = w - mw, g - mg
    np.testing.assert_allclose(got_w, w, rtol=1e-5)
    np.testing.assert_allclose(got_g, g, rtol=1e-5)
    torch_rmsprop = torch.optim.RMSprop([torch.nn.Parameter(torch.from_numpy(W0.copy()))], lr=0.4, alpha=0.9, eps=1.0)
    torch_rmsprop.param_groups[0]["params"][0].grad = torch.from_numpy(GRADS[0][0])
    torch_rmsprop.step()  # torch's own RMSprop (eps outside, s from 0) is measurably different
    assert not np.allclose(torch_rmsprop.param_groups[0]["params"][0].detach().numpy(), _torch(
        load_recipe("inception_v4", {"optim.weight_decay": "0"}), np.array([0.4] * 3, np.float32))[0], atol=1e-3)
    state = steps.optimizer_state(optimizer, named, position=3)
    assert set(state) == {"global_step", "mean_square.layer.weight", "moment.layer.weight", "mean_square.bn.gamma",
                          "moment.bn.gamma"}  # MindSpore's own names for RMSProp state


@pytest.mark.parametrize("convention", ["eps_over_c_minus_1", "eps_over_c", "none"])
def test_smoothed_cross_entropy_matches_mindspore(convention):
    eps = 0.0 if convention == "none" else 0.1
    on, off = smoothing_values(eps, 5, convention)
    logits = np.array([[2.0, 0.5, -1.0, 0.0, 1.0], [0.1, 0.2, 0.3, 0.4, 0.5], [300.0, 0.0, 0, 0, 0]], np.float32)
    labels = np.array([0, 3, 1], np.int32)
    want = float(ms_steps.SmoothCrossEntropy(5, on, off)(Tensor(logits), Tensor(labels)).asnumpy())
    got = float(steps.SmoothCrossEntropy(5, on, off)(torch.from_numpy(logits), torch.from_numpy(labels)))
    assert got == pytest.approx(want, rel=1e-5)
    if convention == "eps_over_c":  # torch's label_smoothing is a third convention (off = eps/C, on = 1-eps+eps/C)
        builtin = float(torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels).long(),
                                                          label_smoothing=0.1))
        assert builtin != pytest.approx(got, rel=1e-4)


def _step(kind: str) -> tuple[steps.TrainStep, torch.nn.Linear, DynamicLossScale | None]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    optimizer = steps.build_optimizer(dict(model.named_parameters()), load_recipe("googlenet_cifar10").optim)
    plan = {"none": LossScalePlan("none"), "fixed": LossScalePlan("fixed", 1024.0),
            "dynamic": LossScalePlan("dynamic", 1.0, 2.0**128, 2.0**20, 2)}[kind]
    scaler = None if kind != "dynamic" else DynamicLossScale(plan.dynamic_init, plan.dynamic_factor,
                                                             plan.dynamic_window)
    return (steps.TrainStep(model, steps.build_loss(load_recipe("googlenet_cifar10").loss, 3), optimizer, plan,
                            amp=None, scaler=scaler, world_size=1), model, scaler)


def test_fixed_loss_scale_changes_nothing_but_dynamic_skips_overflow_steps():
    x, y = torch.randn(8, 4, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    plain, fixed = _step("none"), _step("fixed")
    for _ in range(3):
        plain[0](x, y, 0.1), fixed[0](x, y, 0.1)
    torch.testing.assert_close(fixed[1].weight, plain[1].weight, rtol=1e-6, atol=1e-7)
    dynamic, model, scaler = _step("dynamic")
    before = model.weight.detach().clone()
    _, applied = dynamic(x, y, 0.1)  # 2**128 times the loss overflows fp32: skipped, scale divided by the factor
    assert not applied and torch.equal(model.weight, before) and scaler.scale == 2.0**108
    assert dynamic(x, y, 0.1)[1] and not torch.equal(model.weight, before)


def test_backend_walks_the_recipe_lr_array_by_applied_steps():
    from mindzoo.engine.torch.backend import Backend

    # Dynamic loss scale starting at 1e39: the first step overflows (skipped), then 1e19 trains.
    recipe = load_recipe("googlenet_cifar10", {"epochs": "2", "loss_scale.kind": "dynamic",
                                               "loss_scale.dynamic_init": "1e39", "loss_scale.dynamic_factor": "1e20"})
    lr = lr_array(recipe.schedule, epochs=2, steps_per_epoch=5)  # step fraction: x0.1 at 30%, 60%, 80% of 10
    backend = Backend(threads=1)
    backend.start()
    backend.build_model("googlenet", num_classes=10, input_size=16)
    backend.setup_training(recipe, lr, loss_scale_plan(recipe.loss_scale))
    images, labels = np.random.default_rng(0).random((2, 3, 16, 16), np.float32), np.array([1, 2], np.int32)
    backend.train_step((images, labels))
    assert backend.global_step() == 0 and backend.scaler.scale == pytest.approx(1e19)  # skipped: LR stays at lr[0]
    seen = []
    for _ in range(10):
        backend.train_step((images, labels))
        seen.append(backend.optimizer.param_groups[0]["lr"])
    np.testing.assert_allclose(seen, lr, rtol=1e-6)
    assert backend.global_step() == 10 and seen[0] == pytest.approx(0.1) and seen[-1] == pytest.approx(1e-4)


def test_torch_checkpoint_folder_loads_into_both_engines(tmp_path):
    """What the torch backend saves (model.safetensors, MindSpore names) restores a torch net exactly and scores
    the same in MindSpore's backend — the path `mindzoo evaluate` takes where torch is not installed."""
    from mindzoo.engine.checkpoint import OPTIMIZER_SAFETENSORS, WEIGHTS_SAFETENSORS
    from mindzoo.engine.mindspore.backend import Backend as MindSporeBackend
    from mindzoo.engine.torch.backend import Backend

    recipe = load_recipe("googlenet_cifar10")
    images = np.random.default_rng(0).random((2, 3, 32, 32), np.float32)
    saved = Backend(threads=1)
    saved.start()
    saved.build_model("googlenet", num_classes=10, input_size=32)
    saved.setup_training(recipe, np.full(4, 0.01, np.float32), loss_scale_plan(recipe.loss_scale))
    saved.train_step((images, np.array([1, 2], np.int32)))  # moving statistics and momentum are not the initial
    saved.save(tmp_path, optimizer=True)
    assert {p.name for p in tmp_path.iterdir()} == {WEIGHTS_SAFETENSORS, OPTIMIZER_SAFETENSORS}
    restored = Backend(threads=1)
    restored.start()
    restored.build_model("googlenet", num_classes=10, input_size=32)
    restored.setup_training(recipe, np.full(4, 0.01, np.float32), loss_scale_plan(recipe.loss_scale))
    restored.load(tmp_path, optimizer=True, where="test")
    assert restored.weights_digest() == saved.weights_digest() and restored.global_step() == 1
    saved.net.eval()
    with torch.no_grad():
        expected = saved.net(torch.from_numpy(images)).numpy()
    mode = ms.get_context("mode")
    try:
        ms_backend = MindSporeBackend(mode="pynative")  # one forward: no graph to compile
        ms_backend.start()
        ms_backend.build_model("googlenet", num_classes=10, input_size=32)
        ms_backend.load(tmp_path, optimizer=False, where="test")
        ms_backend.net.set_train(False)
        np.testing.assert_allclose(ms_backend.net(Tensor(images)).asnumpy(), expected, atol=1e-4)
    finally:
        ms.set_context(mode=mode)  # other modules in this process keep their mode


@pytest.mark.parametrize("name", ["googlenet", "resnet50"])  # the models MindSpore initialises TruncatedNormal
def test_initial_weights_have_mindspore_scale(name):
    """MindSpore's TruncatedNormal(σ) cuts at ±2 in value, not ±2σ; behind BatchNorm the weight scale sets the
    effective learning rate, so a torch init 12% smaller trained the digits run to 0.85 instead of 0.9+."""
    from mindzoo import convert
    from mindzoo.registry import create_model

    ms.set_seed(1)
    torch.manual_seed(1)
    expected = {p.name: p.asnumpy().std() for p in create_model(name, num_classes=10, input_size=32).get_parameters()}
    got = convert.torch_to_mindspore(create_model(name, framework="torch", num_classes=10, input_size=32).state_dict())
    ratios = {k: float(got[k].std() / std) for k, std in expected.items() if got[k].size >= 256 and std > 0}
    off = {k: r for k, r in ratios.items() if abs(r - 1) >= 0.1}
    assert ratios and not off, off


def test_amp_is_fp16_autocast_on_gpu_only():
    assert steps.amp_dtype("O3", "gpu") is torch.float16 and steps.amp_dtype("O2", "gpu") is torch.float16
    assert steps.amp_dtype("O0", "gpu") is None and steps.amp_dtype("O0", "cpu") is None


@pytest.mark.parametrize("env, expected", [
    ({}, (0, 1, 0, 1, "", 0, False)),
    ({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "10.0.0.1",
      "MASTER_PORT": "29500"}, (1, 4, 1, 2, "10.0.0.1", 29500, True)),
    ({"PET_NODE_RANK": "3", "PET_NNODES": "4", "PET_MASTER_ADDR": "job-0.svc", "PET_MASTER_PORT": "23456"},
     (3, 4, 0, 1, "job-0.svc", 23456, True)),
    ({"MINDZOO_NODE_RANK": "0", "MINDZOO_NUM_NODES": "2", "MINDZOO_MASTER_ADDR": "train-0.train.ns.svc",
      "MINDZOO_MASTER_PORT": "8118"}, (0, 2, 0, 1, "train-0.train.ns.svc", 8118, True)),
])
def test_cluster_variables_of_torchrun_pytorchjob_and_the_kubernetes_launcher(env, expected):
    got = TorchClusterEnv.from_env(env)
    assert (got.rank, got.world_size, got.local_rank, got.local_world_size, got.master_addr, got.master_port,
            got.launched) == expected


def test_bad_cluster_variables_name_the_variable():
    with pytest.raises(ConfigError, match="MINDZOO_MASTER_ADDR: a job of 2 processes needs"):
        TorchClusterEnv.from_env({"MINDZOO_NODE_RANK": "1", "MINDZOO_NUM_NODES": "2"})
    with pytest.raises(ConfigError, match="RANK: rank 2 is outside a world of 2"):
        TorchClusterEnv.from_env({"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "a", "MASTER_PORT": "1"})
    with pytest.raises(ConfigError, match="PET_NNODES: must be an integer"):
        TorchClusterEnv.from_env({"PET_NODE_RANK": "0", "PET_NNODES": "1:2"})
