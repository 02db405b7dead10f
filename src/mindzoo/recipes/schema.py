"""Typed, frozen recipe sections; validation names keys relative to each section.

:func:`mindzoo.recipes.load_recipe` adds the dotted prefix (``recipe.optim.``),
so a failure reads ``recipe.optim.weight_decay: must be >= 0``. The LR formulas
themselves belong to the train step; these classes only hold their parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Union

from mindzoo.archs import DATA_CONFIGS, MODELS
from mindzoo.errors import ConfigError

__all__ = [
    "AmpConfig", "CheckpointConfig", "CosinePerEpochSchedule", "EvalConfig", "GenetCosineSchedule",
    "LinearSchedule", "LossConfig", "LossScaleConfig", "LrScalingConfig", "MultiStepSchedule", "NoDecayConfig",
    "OptimConfig", "Recipe", "SCHEDULES", "Schedule", "StepFractionSchedule", "WarmupCosineSchedule",
]

AmpLevel = Literal["O0", "O1", "O2", "O3"]


def check(condition: bool, key: str, problem: str) -> None:
    if not condition:
        raise ConfigError(key, problem)


@dataclass(frozen=True)
class NoDecayConfig:
    """Which parameters get weight decay 0: names ending in (``suffix``) or containing (``substring``)."""

    rule: Literal["suffix", "substring", "none"] = "none"
    patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check((self.rule == "none") == (not self.patterns), "patterns",
              "give patterns for rule suffix/substring and none for rule none")

    def applies(self, param_name: str) -> bool:
        """True if ``param_name`` is excluded from weight decay."""
        if self.rule == "suffix":
            return param_name.endswith(self.patterns)
        return self.rule == "substring" and any(p in param_name for p in self.patterns)


@dataclass(frozen=True)
class OptimConfig:
    """Momentum (v = mu*v + g; w -= lr*v) or RMSProp (eps inside the sqrt); coupled L2 decay."""

    name: Literal["momentum", "rmsprop"]
    momentum: float = 0.9
    weight_decay: float = 0.0
    no_decay: NoDecayConfig = field(default_factory=NoDecayConfig)
    decay: float | None = None  # RMSProp rho
    epsilon: float | None = None  # RMSProp epsilon

    def __post_init__(self) -> None:
        check(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")
        check(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        if self.name == "rmsprop":
            check(self.decay is not None and 0 < self.decay < 1, "decay", "rmsprop needs a decay in (0, 1)")
            check(self.epsilon is not None and self.epsilon > 0, "epsilon", "rmsprop needs an epsilon > 0")


@dataclass(frozen=True, kw_only=True)
class CosinePerEpochSchedule:
    """Linear warmup from 0 over warmup steps, then eta_min + (base-eta_min)(1+cos(pi*epoch/t_max))/2."""

    kind: Literal["cosine_per_epoch"] = "cosine_per_epoch"
    base_lr: float
    warmup_epochs: int = 0
    t_max: int
    eta_min: float = 0.0

    def __post_init__(self) -> None:
        check(self.base_lr > 0, "base_lr", "must be > 0")
        check(self.warmup_epochs >= 0, "warmup_epochs", "must be >= 0")
        check(self.t_max > 0, "t_max", "must be > 0")
        check(0 <= self.eta_min <= self.base_lr, "eta_min", "must be in [0, base_lr]")


@dataclass(frozen=True, kw_only=True)
class MultiStepSchedule:
    """base_lr multiplied by gamma at each milestone epoch."""

    kind: Literal["multistep"] = "multistep"
    base_lr: float
    gamma: float
    milestones: tuple[int, ...]
    warmup_epochs: int = 0

    def __post_init__(self) -> None:
        check(self.base_lr > 0, "base_lr", "must be > 0")
        check(0 < self.gamma <= 1, "gamma", "must be in (0, 1]")
        ms = self.milestones
        check(all(m > 0 for m in ms) and list(ms) == sorted(set(ms)), "milestones",
              "must be strictly increasing positive epochs")
        check(self.warmup_epochs >= 0, "warmup_epochs", "must be >= 0")


@dataclass(frozen=True, kw_only=True)
class StepFractionSchedule:
    """base_lr multiplied by factor each time the step passes a fraction of all steps."""

    kind: Literal["step_fraction"] = "step_fraction"
    base_lr: float
    fractions: tuple[float, ...] = (0.3, 0.6, 0.8)
    factor: float = 0.1

    def __post_init__(self) -> None:
        check(self.base_lr > 0, "base_lr", "must be > 0")
        fr = self.fractions
        check(all(0 < f < 1 for f in fr) and list(fr) == sorted(set(fr)), "fractions",
              "must be strictly increasing in (0, 1)")
        check(0 < self.factor <= 1, "factor", "must be in (0, 1]")


@dataclass(frozen=True, kw_only=True)
class LinearSchedule:
    """lr_i = lr_init - (lr_init - lr_end) * i / total_steps."""

    kind: Literal["linear"] = "linear"
    lr_init: float
    lr_end: float = 0.0

    def __post_init__(self) -> None:
        check(self.lr_init > 0, "lr_init", "must be > 0")
        check(0 <= self.lr_end <= self.lr_init, "lr_end", "must be in [0, lr_init]")


@dataclass(frozen=True, kw_only=True)
class WarmupCosineSchedule:
    """Per step: linear lr_init -> lr_max over warmup, then cosine lr_max -> lr_end."""

    kind: Literal["warmup_cosine"] = "warmup_cosine"
    lr_init: float
    lr_max: float
    lr_end: float
    warmup_epochs: int = 0

    def __post_init__(self) -> None:
        check(self.lr_max > 0, "lr_max", "must be > 0")
        check(0 <= self.lr_init <= self.lr_max, "lr_init", "must be in [0, lr_max]")
        check(0 <= self.lr_end <= self.lr_max, "lr_end", "must be in [0, lr_max]")
        check(self.warmup_epochs >= 0, "warmup_epochs", "must be >= 0")


@dataclass(frozen=True, kw_only=True)
class GenetCosineSchedule:
    """GENet's cosine: lr_init * [((T-i)/T) * 0.5 * (1 + cos(2*pi*0.47*i/T)) + 1e-5]."""

    kind: Literal["genet_cosine"] = "genet_cosine"
    lr_init: float

    def __post_init__(self) -> None:
        check(self.lr_init > 0, "lr_init", "must be > 0")


Schedule = Union[CosinePerEpochSchedule, MultiStepSchedule, StepFractionSchedule, LinearSchedule,
                 WarmupCosineSchedule, GenetCosineSchedule]
SCHEDULES: dict[str, type] = {
    cls.__dataclass_fields__["kind"].default: cls for cls in Schedule.__args__  # type: ignore[attr-defined]
}


@dataclass(frozen=True)
class LrScalingConfig:
    """How the schedule's rates depend on the data-parallel world size (number of ranks).

    ``fixed``: the same rates on any world size (what a ModelZoo recipe does when its 1- and
    8-device scripts share one config). ``linear``: rates x world_size / base_world_size.
    ``published``: the rates the ModelZoo scripts publish per world size, ``"<world>:<lr>"``
    entries; the schedule's rates are the ``base_world_size`` entry's, so a world size in the
    list scales them by its lr over the base's, and any other world size scales linearly.
    """

    rule: Literal["fixed", "linear", "published"] = "fixed"
    base_world_size: int = 1
    published: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check(self.base_world_size >= 1, "base_world_size", "must be >= 1")
        values = self.values()  # parses (and so checks) the entries
        if self.rule == "published":
            check(self.base_world_size in values, "published",
                  f"rule published needs an entry for base_world_size {self.base_world_size}")
        else:
            check(not values, "published", "only rule published takes published values")

    def values(self) -> dict[int, float]:
        """``{world size: published lr}``."""
        out: dict[int, float] = {}
        for entry in self.published:
            world, sep, lr = str(entry).partition(":")
            try:
                out[int(world)] = float(lr) if sep else float("nan")
            except ValueError:
                check(False, "published", f"entries are <world size>:<lr> (got {entry!r})")
            check(out[int(world)] > 0 and int(world) >= 1, "published",
                  f"entries are <world size >= 1>:<lr > 0> (got {entry!r})")
        return out

    def factor(self, world_size: int) -> tuple[float, str]:
        """(multiplier of the schedule's rates at ``world_size``, why) by this rule."""
        base = self.base_world_size
        if self.rule == "fixed":
            return 1.0, "rule fixed: the recipe's rates on any world size"
        published = self.values()
        if self.rule == "published" and world_size == base:
            return 1.0, f"rule published: the rates of world size {base}"
        if self.rule == "published" and world_size in published:
            factor = published[world_size] / published[base]
            return factor, (f"rule published: {published[world_size]:g} on world size {world_size} vs "
                            f"{published[base]:g} on {base}, so the rates x {factor:.6g}")
        why = "rule linear" if self.rule == "linear" else f"no published rate for world size {world_size}"
        return world_size / base, f"{why}: x {world_size}/{base} from the rates of world size {base}"


@dataclass(frozen=True)
class LossConfig:
    """Softmax CE; with smoothing, on = 1 - eps and off = eps/(C-1) or eps/C."""

    label_smoothing: float = 0.0
    off_value: Literal["eps_over_c_minus_1", "eps_over_c", "none"] = "none"

    def __post_init__(self) -> None:
        check(0 <= self.label_smoothing < 1, "label_smoothing", "must be in [0, 1)")
        check((self.label_smoothing > 0) == (self.off_value != "none"), "off_value",
              "must be none without label smoothing and eps_over_c[_minus_1] with it")


@dataclass(frozen=True)
class LossScaleConfig:
    """Fixed (loss * value, grads / value, overflow steps still applied) or dynamic loss scaling."""

    kind: Literal["fixed", "dynamic", "none"] = "none"
    value: float = 1.0
    drop_overflow_update: bool = False
    dynamic_init: float = 65536.0
    dynamic_factor: float = 2.0
    dynamic_window: int = 2000

    def __post_init__(self) -> None:
        check(self.value >= 1, "value", "must be >= 1")
        check(self.dynamic_init >= 1 and self.dynamic_factor > 1, "dynamic_factor",
              "dynamic_init must be >= 1 and dynamic_factor > 1")
        check(self.dynamic_window > 0, "dynamic_window", "must be > 0")


@dataclass(frozen=True)
class AmpConfig:
    """The recipe's AMP level per device target (CPU always trains in fp32, O0)."""

    ascend: AmpLevel = "O0"
    gpu: AmpLevel = "O0"
    cpu: AmpLevel = "O0"

    def __post_init__(self) -> None:
        check(self.cpu == "O0", "cpu", "must be O0 (MindSpore CPU kernels are fp32)")

    def level(self, device_target: str) -> str:
        return getattr(self, device_target.lower())


@dataclass(frozen=True)
class CheckpointConfig:
    """Periodic checkpoints ``<prefix>-<epoch>_<step>.ckpt``; ``{rank}`` in prefix is the rank."""

    every_epochs: int = 1  # 0: no periodic checkpoints
    keep: int = 10
    prefix: str = "checkpoint"
    save_best: bool = False  # also keep best.ckpt by the eval.best rule

    def __post_init__(self) -> None:
        check(self.every_epochs >= 0, "every_epochs", "must be >= 0")
        check(self.keep >= 1, "keep", "must be >= 1")
        check(bool(self.prefix) and "/" not in self.prefix, "prefix", "must be a non-empty file-name prefix")
        check(self.every_epochs > 0 or self.save_best, "every_epochs", "> 0 or save_best, else nothing is saved")


@dataclass(frozen=True)
class EvalConfig:
    """In-training evaluation; ``every_epochs`` 0 means the recipe evaluates only after training."""

    every_epochs: int = 0
    best: Literal["top1", "top1_and_top5"] = "top1"
    batch_size: int | None = None  # None: the train batch size
    drop_remainder: bool = True

    def __post_init__(self) -> None:
        check(self.every_epochs >= 0, "every_epochs", "must be >= 0")
        check(self.batch_size is None or self.batch_size > 0, "batch_size", "must be > 0")


@dataclass(frozen=True)
class Recipe:
    """One ModelZoo training recipe.

    ``multi_size``: per-epoch cycle of train input sizes (SPPNet multi-size); with it,
    in-training eval runs only after epochs trained at the first size.
    ``lr_scaling``: the world-size rule the train step applies to the schedule's rates.
    ``model_kwargs``: extra builder arguments (e.g. SPPNet's per-recipe ``drop_rate``).
    """

    name: str
    model: str
    data_config: str
    dataset: Literal["imagenet", "cifar10"]
    num_classes: int
    epochs: int
    batch_size: int
    optim: OptimConfig
    schedule: Schedule
    loss: LossConfig
    loss_scale: LossScaleConfig
    amp_level: AmpConfig
    keep_batchnorm_fp32: bool
    seed: int
    checkpoint: CheckpointConfig
    eval: EvalConfig
    multi_size: tuple[int, ...] = ()
    lr_scaling: LrScalingConfig = field(default_factory=LrScalingConfig)
    model_kwargs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        check(self.model in MODELS, "model", f"unknown model {self.model!r}; available: {', '.join(sorted(MODELS))}")
        check(self.data_config in DATA_CONFIGS, "data_config",
              f"unknown data config {self.data_config!r}; available: {', '.join(sorted(DATA_CONFIGS))}")
        check(DATA_CONFIGS[self.data_config].dataset == self.dataset, "dataset",
              f"data config {self.data_config!r} is for {DATA_CONFIGS[self.data_config].dataset}")
        check(self.num_classes > 1, "num_classes", "must be > 1")
        check(self.epochs > 0, "epochs", "must be > 0")
        check(self.batch_size > 0, "batch_size", "must be > 0")
        check(self.seed >= 0, "seed", "must be >= 0")
        check(all(s > 0 for s in self.multi_size) and len(self.multi_size) != 1, "multi_size",
              "must list two or more positive sizes, or none")
        object.__setattr__(self, "model_kwargs", MappingProxyType(dict(self.model_kwargs)))
