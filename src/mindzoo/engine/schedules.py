"""Per-step learning-rate arrays for every schedule kind in the recipes (framework-neutral numpy).

Each function returns ``lr[i]`` for global step ``i`` in ``0 .. epochs*steps_per_epoch - 1``;
the optimizer reads entry ``global_step``, so the array *is* the LR position a
checkpoint has to restore (only the step counter is saved). Formulas follow
modelzoo_facts.md: §1.3 (per-epoch cosine with linear warmup from 0), §3.3
(multistep ×γ at epochs; step ×factor at fractions of all steps), §4.3 (linear;
GENet's cosine variant), §5.3 (InceptionV4's warmup then per-step cosine).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["RATE_FIELDS", "base_lr", "lr_array", "world_schedule"]

# The fields of a schedule section that are rates (scaled together by the world-size rule).
RATE_FIELDS = ("base_lr", "eta_min", "lr_init", "lr_max", "lr_end")


def lr_array(schedule: Any, *, epochs: int, steps_per_epoch: int) -> np.ndarray:
    """float32 array of ``epochs * steps_per_epoch`` learning rates for a recipe ``schedule`` section."""
    if epochs < 1 or steps_per_epoch < 1:
        raise ValueError(f"need epochs >= 1 and steps_per_epoch >= 1 (got {epochs}, {steps_per_epoch})")
    build = _KINDS.get(schedule.kind)
    if build is None:
        raise ValueError(f"no LR formula for schedule kind {schedule.kind!r}")
    steps = np.arange(epochs * steps_per_epoch, dtype=np.float64)
    return build(schedule, steps, steps_per_epoch).astype(np.float32)


def base_lr(schedule: Any) -> float:
    """The schedule's headline rate (logged as the ``lr`` parameter)."""
    for name in ("base_lr", "lr_max", "lr_init"):
        if hasattr(schedule, name):
            return float(getattr(schedule, name))
    raise ValueError(f"schedule {schedule.kind!r} names no base rate")


def world_schedule(recipe: Any, world_size: int) -> tuple[Any, str]:
    """(the recipe's schedule with its rates at ``world_size`` ranks, a line saying which lr and why)."""
    import dataclasses

    factor, why = recipe.lr_scaling.factor(world_size)
    schedule = recipe.schedule
    if factor != 1.0:
        schedule = dataclasses.replace(schedule, **{name: getattr(schedule, name) * factor
                                                    for name in RATE_FIELDS if hasattr(schedule, name)})
    return schedule, f"lr {base_lr(schedule):.6g} on world size {world_size} ({why})"


def _warmup(lr: np.ndarray, steps: np.ndarray, warmup_steps: int, peak: float) -> np.ndarray:
    """Linear warmup from 0: step i < W gets peak * (i + 1) / W (ModelZoo's ``linear_warmup_lr``)."""
    if warmup_steps > 0:
        lr = np.where(steps < warmup_steps, peak * (steps + 1) / warmup_steps, lr)
    return lr


def _cosine_per_epoch(s: Any, steps: np.ndarray, spe: int) -> np.ndarray:
    # The cosine moves once per epoch and is not shifted by the warmup (§1.3); past t_max it rises again.
    epoch = np.floor(steps / spe)
    lr = s.eta_min + (s.base_lr - s.eta_min) * (1 + np.cos(math.pi * epoch / s.t_max)) / 2
    return _warmup(lr, steps, s.warmup_epochs * spe, s.base_lr)


def _multistep(s: Any, steps: np.ndarray, spe: int) -> np.ndarray:
    epoch = np.floor(steps / spe)
    passed = sum((epoch >= m).astype(np.float64) for m in s.milestones) if s.milestones else np.zeros_like(steps)
    return _warmup(s.base_lr * np.power(s.gamma, passed), steps, s.warmup_epochs * spe, s.base_lr)


def _step_fraction(s: Any, steps: np.ndarray, spe: int) -> np.ndarray:
    total = len(steps)
    passed = sum((steps >= f * total).astype(np.float64) for f in s.fractions)
    return s.base_lr * np.power(s.factor, passed)


def _linear(s: Any, steps: np.ndarray, spe: int) -> np.ndarray:
    return s.lr_init - (s.lr_init - s.lr_end) * steps / len(steps)


def _warmup_cosine(s: Any, steps: np.ndarray, spe: int) -> np.ndarray:
    total, warm = len(steps), s.warmup_epochs * spe
    rising = s.lr_init + (s.lr_max - s.lr_init) * (steps + 1) / max(warm, 1)
    decay = s.lr_end + (s.lr_max - s.lr_end) * 0.5 * (1 + np.cos(math.pi * (steps - warm) / max(total - warm, 1)))
    return np.where(steps < warm, rising, decay)


def _genet_cosine(s: Any, steps: np.ndarray, spe: int) -> np.ndarray:
    total = len(steps)
    return s.lr_init * ((total - steps) / total * 0.5 * (1 + np.cos(2 * math.pi * 0.47 * steps / total)) + 1e-5)


_KINDS: dict[str, Callable[[Any, np.ndarray, int], np.ndarray]] = {
    "cosine_per_epoch": _cosine_per_epoch,
    "multistep": _multistep,
    "step_fraction": _step_fraction,
    "linear": _linear,
    "warmup_cosine": _warmup_cosine,
    "genet_cosine": _genet_cosine,
}
