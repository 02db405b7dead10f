"""Loss, optimizers and the train step of the torch engine, with the recipes' MindSpore math.

- Loss: softmax CE against one-hot targets with the recipe's ``on``/``off`` values
  (:func:`mindzoo.engine.loss.smoothing_values`). torch's own ``label_smoothing``
  gives off = eps/C and on = 1 - eps + eps/C, which matches neither recipe convention.
- Momentum: ``torch.optim.SGD`` (momentum, no dampening, no Nesterov, weight decay per
  group) *is* MindSpore's ``nn.Momentum``: ``g += wd*w; v = mu*v + g; w -= lr*v`` with v
  starting at 0. RMSProp: :class:`MindSporeRMSProp` — torch's ``RMSprop`` puts eps outside
  the root, starts the mean square at 0 and keeps lr outside the momentum, so it differs.
- Groups: the recipe's no-decay rule (:func:`mindzoo.engine.optim.param_groups`) is
  applied to MindSpore parameter names (``bn.gamma``), so one rule serves both engines.
- Loss scale: ``fixed`` multiplies the loss by S and divides the gradients by S, applying
  overflow steps anyway (``drop_overflow_update=False``); ``dynamic`` uses the shared host
  rule (:class:`mindzoo.engine.loss.DynamicLossScale`, MindSpore's update cell) and skips
  overflow steps. This is GradScaler's algorithm, but GradScaler cannot apply overflow
  steps (the fixed recipes) and its rule has no floor at 1, so the shared rule is used
  and saved the same way by both engines.
- AMP: the recipe's level on GPU (O1/O2/O3) runs under ``torch.autocast`` in fp16 with
  fp32 master weights and BatchNorm in fp32; CPU is O0 (fp32), as the recipes' CPU configs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mindzoo.engine.loss import LossScalePlan, smoothing_values
from mindzoo.engine.optim import param_groups

__all__ = ["MindSporeRMSProp", "SmoothCrossEntropy", "TrainStep", "amp_dtype", "build_loss", "build_optimizer",
           "load_optimizer_state", "optimizer_state", "set_lr"]


class SmoothCrossEntropy(torch.nn.Module):
    """Mean softmax CE against one-hot labels with ``on``/``off`` target values."""

    def __init__(self, num_classes: int, on: float, off: float) -> None:
        super().__init__()
        self.num_classes, self.on, self.off = num_classes, on, off

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        target = torch.full_like(logits, self.off).scatter_(1, labels.long().view(-1, 1), self.on)
        return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def build_loss(loss_cfg: Any, num_classes: int) -> SmoothCrossEntropy:
    return SmoothCrossEntropy(num_classes, *smoothing_values(loss_cfg.label_smoothing, num_classes,
                                                             loss_cfg.off_value))


class MindSporeRMSProp(torch.optim.Optimizer):
    """MindSpore ``nn.RMSProp`` (not centred): ``g += wd*w; s = rho*s + (1-rho)*g^2;
    m = mu*m + lr*g/sqrt(s + eps); w -= m``, with ``s`` starting at 1 and ``m`` at 0."""

    def __init__(self, params: Iterable[Any], lr: float = 0.01, decay: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-10, weight_decay: float = 0.0) -> None:
        defaults = {"lr": lr, "decay": decay, "momentum": momentum, "epsilon": epsilon, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # noqa: ARG002 - the Optimizer signature
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            if group["weight_decay"]:
                grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
            for p in params:
                if not self.state[p]:
                    self.state[p] = {"mean_square": torch.ones_like(p), "moment": torch.zeros_like(p)}
            squares = [self.state[p]["mean_square"] for p in params]
            moments = [self.state[p]["moment"] for p in params]
            rho = group["decay"]
            torch._foreach_mul_(squares, rho)
            torch._foreach_addcmul_(squares, grads, grads, value=1 - rho)
            denominators = torch._foreach_sqrt(torch._foreach_add(squares, group["epsilon"]))  # eps inside the root
            torch._foreach_mul_(moments, group["momentum"])
            torch._foreach_addcdiv_(moments, grads, denominators, value=group["lr"])
            torch._foreach_sub_(params, moments)


# Optimizer state, named as MindSpore names its own (``moments.<param>``; ``mean_square.<param>``, ``moment.<param>``).
_STATE_NAMES = {"momentum_buffer": "moments", "mean_square": "mean_square", "moment": "moment"}


def build_optimizer(named: Mapping[str, torch.nn.Parameter], optim: Any,
                    lr_mult: Mapping[str, float] | None = None) -> torch.optim.Optimizer:
    """The recipe's optimizer over ``named`` (MindSpore name -> torch parameter); the LR is set per step,
    times each group's ``lr_mult``."""
    groups = [{"params": [named[n] for n in g.names], "weight_decay": g.weight_decay, "lr_mult": g.lr_mult}
              for g in param_groups(named, optim, lr_mult)]
    if optim.name == "momentum":
        return torch.optim.SGD(groups, lr=0.0, momentum=float(optim.momentum), dampening=0.0, nesterov=False)
    return MindSporeRMSProp(groups, lr=0.0, decay=float(optim.decay), momentum=float(optim.momentum),
                            epsilon=float(optim.epsilon))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_mult", 1.0)


def optimizer_state(optimizer: torch.optim.Optimizer, named: Mapping[str, torch.nn.Parameter],
                    position: int) -> dict[str, np.ndarray]:
    """Moments under MindSpore-style names, plus ``global_step`` (the LR position)."""
    out = {"global_step": np.array([position], np.int32)}
    for name, param in named.items():
        for key, value in optimizer.state.get(param, {}).items():
            if key in _STATE_NAMES and isinstance(value, Tensor):
                out[f"{_STATE_NAMES[key]}.{name}"] = value.detach().float().cpu().numpy()
    return out


def load_optimizer_state(optimizer: torch.optim.Optimizer, named: Mapping[str, torch.nn.Parameter],
                         arrays: Mapping[str, np.ndarray]) -> int:
    """Restore :func:`optimizer_state`; returns the saved LR position."""
    for name, param in named.items():
        state = {key: torch.from_numpy(np.array(arrays[f"{prefix}.{name}"])).to(param.device, param.dtype)
                 for key, prefix in _STATE_NAMES.items() if f"{prefix}.{name}" in arrays}
        if state:
            optimizer.state[param] = state
    return int(np.asarray(arrays.get("global_step", [0])).reshape(-1)[0])


def amp_dtype(level: str, device: str) -> torch.dtype | None:
    """fp16 autocast for any AMP level above O0 on GPU; None (fp32) otherwise."""
    return torch.float16 if device == "gpu" and level != "O0" else None


class TrainStep:
    """One batch: forward (autocast), scaled backward (DDP averages gradients), unscale, overflow rule, update."""

    def __init__(self, model: torch.nn.Module, loss_fn: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 plan: LossScalePlan, *, amp: torch.dtype | None, scaler: Any, world_size: int) -> None:
        self.model, self.loss_fn, self.optimizer, self.plan = model, loss_fn, optimizer, plan
        self.amp, self.scaler, self.world_size = amp, scaler, world_size
        self.params = [p for group in optimizer.param_groups for p in group["params"]]

    def scale(self) -> float:
        if self.plan.kind == "fixed":
            return self.plan.value
        return float(self.scaler.scale) if self.plan.kind == "dynamic" else 1.0

    def __call__(self, images: Tensor, labels: Tensor, lr: float) -> tuple[float, bool]:
        """(loss averaged over ranks, whether the update was applied)."""
        device_type = images.device.type
        with torch.autocast(device_type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            logits = self.model(images)
        loss = self.loss_fn(logits.float(), labels)
        self.optimizer.zero_grad(set_to_none=True)
        scale = self.scale()
        (loss * scale if scale != 1.0 else loss).backward()
        grads = [p.grad for p in self.params if p.grad is not None]
        if scale != 1.0:
            torch._foreach_div_(grads, scale)
        applied = True
        if self.plan.kind == "dynamic":  # gradients are already averaged, so every rank decides the same
            overflow = not bool(torch.stack([torch.isfinite(g).all() for g in grads]).all())
            applied = self.scaler.update(overflow)
        if applied:
            set_lr(self.optimizer, lr)
            self.optimizer.step()
        value = loss.detach()
        if self.world_size > 1:  # every rank sees the same loss, so all stop at the same NaN step
            import torch.distributed as dist

            dist.all_reduce(value)
            value = value / self.world_size
        return float(value), applied
