"""Loss settings that do not depend on a framework: label-smoothing values and loss scaling.

Label smoothing (modelzoo_facts.md §2.3, §3.3, §4.3): the recipes build a one-hot
target with ``on = 1 - eps`` and an off value of either ``eps / (C - 1)``
(ResNet50-BAM, GoogLeNet ImageNet; rows sum to 1) or ``eps / C`` (GENet; rows sum
to slightly less than 1 — kept, as the recipe).

Loss scale (§0): ``fixed`` multiplies the loss by S and divides the gradients by S
inside the optimizer, applying overflow steps anyway (``drop_overflow_update=False``);
``dynamic`` starts at 65536, halves on overflow (the step is skipped) and doubles
after 2000 clean steps. :class:`DynamicLossScale` is MindSpore's
``DynamicLossScaleUpdateCell`` rule, kept on the host so it runs on CPU (where
MindSpore has no loss-scale cell) and is saved with a checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["DynamicLossScale", "LossScalePlan", "loss_scale_plan", "smoothing_values"]


def smoothing_values(label_smoothing: float, num_classes: int, off_value: str) -> tuple[float, float]:
    """(on, off) target values of the recipe's smoothed one-hot labels."""
    if label_smoothing == 0 or off_value == "none":
        return 1.0, 0.0
    if off_value == "eps_over_c_minus_1":
        return 1.0 - label_smoothing, label_smoothing / (num_classes - 1)
    if off_value == "eps_over_c":
        return 1.0 - label_smoothing, label_smoothing / num_classes
    raise ValueError(f"unknown off-value convention {off_value!r}")


@dataclass(frozen=True)
class LossScalePlan:
    """How a train step scales its loss: ``none``, ``fixed`` (value) or ``dynamic`` (host rule)."""

    kind: str
    value: float = 1.0
    dynamic_init: float = 65536.0
    dynamic_factor: float = 2.0
    dynamic_window: int = 2000

    @property
    def optimizer_scale(self) -> float:
        """The optimizer's ``loss_scale`` (it divides gradients by it): S for fixed, else 1."""
        return self.value if self.kind == "fixed" else 1.0


def loss_scale_plan(cfg: Any) -> LossScalePlan:
    """From a recipe's ``loss_scale`` section. A fixed scale that drops overflow steps needs the
    overflow check of the dynamic path, so it runs there with a scale that never changes."""
    if cfg.kind == "none" or (cfg.kind == "fixed" and cfg.value == 1 and not cfg.drop_overflow_update):
        return LossScalePlan("none")
    if cfg.kind == "fixed" and not cfg.drop_overflow_update:
        return LossScalePlan("fixed", float(cfg.value))
    if cfg.kind == "fixed":
        return LossScalePlan("dynamic", float(cfg.value), float(cfg.value), 1.0, 2**31 - 1)  # factor 1: constant
    return LossScalePlan("dynamic", 1.0, float(cfg.dynamic_init), float(cfg.dynamic_factor), int(cfg.dynamic_window))


@dataclass
class DynamicLossScale:
    """MindSpore's DynamicLossScaleUpdateCell, on the host; ``update`` returns whether to apply the step."""

    scale: float = 65536.0
    factor: float = 2.0
    window: int = 2000
    cur_iter: int = 1
    last_overflow_iter: int = 0

    def update(self, overflow: bool) -> bool:
        should_inc = self.window <= self.cur_iter - self.last_overflow_iter
        if overflow:
            self.scale = max(self.scale / self.factor, 1.0)
        elif should_inc:
            self.scale *= self.factor
        if overflow or should_inc:
            self.last_overflow_iter = self.cur_iter
        self.cur_iter += 1
        return not overflow

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, type(getattr(self, key))(value))
