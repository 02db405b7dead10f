"""Optimizer settings that do not depend on a framework: parameter groups and the update rules.

Groups (modelzoo_facts.md §1.3, §2.3, §3.3, §4.3, §5.3): parameters the recipe's
no-decay rule matches — names *ending* in ``.bias``/``.gamma``/``.beta`` (SPPNet,
ResNet50-BAM, GoogLeNet ImageNet) or *containing* ``beta``/``gamma``/``bias``
(GENet, InceptionV4) — get weight decay 0; all others get the recipe's value.
Rule ``none`` decays every parameter.

Update rules, as MindSpore defines them (a torch engine must match these):

- Momentum: ``g += wd * w`` (coupled L2); ``v = mu * v + g``; ``w -= lr * v``.
- RMSProp: ``g += wd * w``; ``s = rho * s + (1 - rho) * g^2``;
  ``m = mu * m + lr * g / sqrt(s + eps)`` (eps **inside** the root); ``w -= m``;
  ``s`` starts at **1** and ``m`` at 0. Checked against ``mindspore.nn.RMSProp``
  on CPU (tests/engine/test_optim.py), so the recipe's math holds with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ParamGroup", "param_groups"]


@dataclass(frozen=True)
class ParamGroup:
    names: tuple[str, ...]
    weight_decay: float
    lr_mult: float = 1.0  # this group's LR is the schedule's times this (fine-tuning's head LR)


def param_groups(names: Iterable[str], optim: Any, lr_mult: Mapping[str, float] | None = None) -> list[ParamGroup]:
    """Split parameter ``names`` by the recipe's no-decay rule, then by LR multiplier (``lr_mult``: name ->
    multiplier, 1 for names not in it); empty groups are left out."""
    names = list(names)
    if optim.weight_decay == 0 or optim.no_decay.rule == "none":
        groups = [ParamGroup(tuple(names), float(optim.weight_decay))]
    else:
        decay = tuple(n for n in names if not optim.no_decay.applies(n))
        plain = tuple(n for n in names if optim.no_decay.applies(n))
        groups = [ParamGroup(decay, float(optim.weight_decay)), ParamGroup(plain, 0.0)]
    mult = dict(lr_mult or {})
    split = []
    for group in groups:
        for m in sorted({mult.get(n, 1.0) for n in group.names}):
            split.append(ParamGroup(tuple(n for n in group.names if mult.get(n, 1.0) == m), group.weight_decay, m))
    return [g for g in split if g.names]
