"""MindSpore loss, optimizer and train-step cells for a recipe.

- Loss: sparse softmax cross-entropy, or the recipes' ``CrossEntropySmooth``
  (one-hot with on/off values, then dense softmax CE, mean).
- Optimizer: ``nn.Momentum`` / ``nn.RMSProp`` with the recipe's parameter groups
  (weight decay per group, ``order_params`` kept) and the per-step LR array.
  ``nn.RMSProp`` puts eps inside the square root on every target (checked on CPU),
  which is the recipe's math.
- Train step, loss scale ``none``/``fixed``: ``mindspore.amp.build_train_network``,
  as ModelZoo's ``Model(amp_level=..., loss_scale_manager=FixedLossScaleManager(S,
  False))`` builds it: the AMP level, the loss multiplied by S and the optimizer
  dividing by S. ``dynamic``: a gradient graph that reports overflow and an
  optimizer graph the host runs only for clean steps — MindSpore's own
  loss-scale cell needs control flow its CPU backend lacks, so this path is the
  same on every device.
- Data parallel: gradients are averaged by MindSpore's reducer (DATA_PARALLEL,
  ``gradients_mean=True``); the returned loss is averaged over ranks too, so every
  rank sees the same value and stops at the same step on NaN.
"""

from __future__ import annotations

from typing import Any

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops
from mindspore.amp import FixedLossScaleManager, build_train_network

from mindzoo.engine.loss import LossScalePlan, smoothing_values
from mindzoo.engine.optim import param_groups

__all__ = ["DynamicStep", "SmoothCrossEntropy", "SumOverRanks", "build_loss", "build_optimizer", "build_train_step",
           "optimizer_state"]


class SmoothCrossEntropy(nn.Cell):
    """Softmax CE against one-hot labels with ``on``/``off`` values (mean over the batch)."""

    def __init__(self, num_classes: int, on: float, off: float) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.on = Tensor(on, ms.float32)
        self.off = Tensor(off, ms.float32)
        self.ce = nn.SoftmaxCrossEntropyWithLogits(sparse=False, reduction="mean")

    def construct(self, logits: Tensor, labels: Tensor) -> Tensor:
        target = ops.one_hot(labels, self.num_classes, self.on, self.off)
        return self.ce(logits, target)


def build_loss(loss_cfg: Any, num_classes: int) -> nn.Cell:
    """Always the dense form: MindSpore's *sparse* CE kernel on CPU returns inf once a logit gap passes ~100
    (a false "diverged"), the dense one stays finite; without smoothing on=1, off=0 is the same loss."""
    on, off = smoothing_values(loss_cfg.label_smoothing, num_classes, loss_cfg.off_value)
    return SmoothCrossEntropy(num_classes, on, off)


def build_optimizer(net: nn.Cell, optim: Any, lr: np.ndarray, loss_scale: float,
                    lr_mult: dict[str, float] | None = None) -> nn.Optimizer:
    """The recipe's optimizer over the trainable parameters; a group with an LR multiplier gets its own
    LR array (the schedule times the multiplier)."""
    params = net.trainable_params()
    by_name = {p.name: p for p in params}
    groups: list[dict[str, Any]] = [
        {"params": [by_name[n] for n in g.names], "weight_decay": g.weight_decay,
         **({"lr": Tensor(lr * g.lr_mult, ms.float32)} if g.lr_mult != 1.0 else {})}
        for g in param_groups(by_name, optim, lr_mult)]
    groups.append({"order_params": params})
    rate = Tensor(lr, ms.float32)
    if optim.name == "momentum":
        return nn.Momentum(groups, learning_rate=rate, momentum=float(optim.momentum), loss_scale=loss_scale)
    return nn.RMSProp(groups, learning_rate=rate, decay=float(optim.decay), momentum=float(optim.momentum),
                      epsilon=float(optim.epsilon), loss_scale=loss_scale)


def optimizer_state(optimizer: nn.Optimizer, net: nn.Cell) -> list[ms.Parameter]:
    """The optimizer's own state: moments and the step counter (the LR array is rebuilt, not saved)."""
    own = {p.name for p in net.get_parameters()}
    return [p for name, p in optimizer.parameters_and_names()
            if name not in own and not name.startswith("learning_rate") and name != "momentum"]


class _MeanOverRanks(nn.Cell):
    """A train step whose returned loss is the mean over all ranks."""

    def __init__(self, step: nn.Cell, world_size: int) -> None:
        super().__init__(auto_prefix=False)
        self.step = step
        self.allreduce = ops.AllReduce()
        self.world = float(world_size)

    def construct(self, images: Tensor, labels: Tensor) -> Tensor:
        return self.allreduce(self.step(images, labels)) / self.world


class SumOverRanks(nn.Cell):
    """Element-wise sum over all ranks (evaluation counts)."""

    def __init__(self) -> None:
        super().__init__(auto_prefix=False)
        self.allreduce = ops.AllReduce()

    def construct(self, values: Tensor) -> Tensor:
        return self.allreduce(values)


class _GradStep(nn.Cell):
    """Loss and gradients at loss scale ``scale``, averaged over ranks, unscaled, with an overflow flag."""

    def __init__(self, loss_net: nn.Cell, weights: Any, world_size: int) -> None:
        super().__init__(auto_prefix=False)
        self.loss_net = loss_net
        self.weights = weights
        self.grad = ops.GradOperation(get_by_list=True, sens_param=True)
        self.parallel = world_size > 1
        self.world = float(world_size)
        if self.parallel:
            self.reducer = nn.DistributedGradReducer(weights, mean=True, degree=world_size)
            self.allreduce = ops.AllReduce()
        self.hyper_map = ops.HyperMap()
        self.count = Tensor(float(len(weights)), ms.float32)

    def construct(self, images: Tensor, labels: Tensor, scale: Tensor) -> tuple:
        loss = self.loss_net(images, labels)
        sens = ops.fill(loss.dtype, loss.shape, scale)
        grads = self.grad(self.loss_net, self.weights)(images, labels, sens)
        if self.parallel:
            grads = self.reducer(grads)
        grads = self.hyper_map(ops.partial(_unscale, scale), grads)
        bad = self.count - ops.addn(self.hyper_map(_finite, grads))  # tensors with an inf or a NaN
        if self.parallel:
            bad = self.allreduce(bad)
            loss = self.allreduce(loss) / self.world
        return loss, grads, bad > 0


def _unscale(scale: Tensor, grad: Tensor) -> Tensor:
    return grad / ops.cast(scale, grad.dtype)


def _finite(grad: Tensor) -> Tensor:
    return ops.cast(ops.isfinite(grad).all(), ms.float32)


class _Apply(nn.Cell):
    def __init__(self, optimizer: nn.Optimizer) -> None:
        super().__init__(auto_prefix=False)
        self.optimizer = optimizer

    def construct(self, grads: tuple) -> Tensor:
        return self.optimizer(grads)


class DynamicStep:
    """Host-driven dynamic loss scaling: skip the optimizer on overflow, as MindSpore's cell does."""

    def __init__(self, loss_net: nn.Cell, optimizer: nn.Optimizer, scaler: Any, world_size: int) -> None:
        self.grad_step = _GradStep(loss_net, optimizer.parameters, world_size)
        self.grad_step.set_train()
        self.apply = _Apply(optimizer)
        self.scaler = scaler
        self.applied = False  # whether the last call updated the weights (and moved the LR position)

    def __call__(self, images: Tensor, labels: Tensor) -> Tensor:
        loss, grads, overflow = self.grad_step(images, labels, Tensor(self.scaler.scale, ms.float32))
        self.applied = self.scaler.update(bool(overflow.asnumpy()))
        if self.applied:
            self.apply(grads)
        return loss


def build_train_step(net: nn.Cell, loss_fn: nn.Cell, optimizer: nn.Optimizer, plan: LossScalePlan, *,
                     amp_level: str, keep_batchnorm_fp32: bool, world_size: int, scaler: Any = None) -> Any:
    """A callable ``step(images, labels) -> loss Tensor`` that trains one batch."""
    kwargs: dict[str, Any] = {}
    if amp_level in ("O2", "O3"):
        kwargs["keep_batchnorm_fp32"] = keep_batchnorm_fp32
    manager = FixedLossScaleManager(plan.value, drop_overflow_update=False) if plan.kind == "fixed" else None
    train = build_train_network(net, optimizer, loss_fn, level=amp_level, loss_scale_manager=manager, **kwargs)
    if plan.kind == "dynamic":
        return DynamicStep(train.network, optimizer, scaler, world_size)
    train.set_train()
    if world_size > 1:
        train = _MeanOverRanks(train, world_size)
        train.set_train()
    return train
