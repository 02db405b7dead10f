"""ModelZoo checkpoints: the name map of each family and the conversion both ways.

mindzoo's networks compute the ModelZoo's function with the same parameter shapes;
only the names differ. Each family's map lives beside its model
(``mindzoo.models.mindspore.<family>_modelzoo.modelzoo_names``: mindzoo name ->
ModelZoo name). Here they are looked up per model, checked to be complete and
one-to-one, and applied to weight dictionaries (numpy arrays by name). A ModelZoo
training checkpoint also holds optimizer state (``moments.*``, ``learning_rate``,
``global_step``, loss-scale values): weights-only readers ignore and report it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mindzoo.engine.checkpoint import CheckpointMismatch

__all__ = ["FAMILIES", "NameMapError", "from_modelzoo", "is_optimizer_entry", "model_shapes", "name_map",
           "split_optimizer", "to_modelzoo"]

# model -> the family file holding its map (mindzoo.models.mindspore.<family>_modelzoo)
FAMILIES = {"zfnet": "zfnet", "sppnet": "zfnet", "googlenet": "googlenet", "resnet50_bam": "resnet",
            "genet_res50_theta_minus": "resnet", "genet_res50_theta": "resnet", "genet_res50_theta_plus": "resnet",
            "inception_v4": "inception_v4"}

# What MindSpore's optimizers, loss-scale cells and ModelCheckpoint save beside the weights.
_OPTIMIZER_PREFIXES = ("moments.", "moment.", "mean_square.", "mean_grad.", "accum.", "adam_m.", "adam_v.")
_OPTIMIZER_NAMES = frozenset({"learning_rate", "global_step", "momentum", "scale_sense", "loss_scale",
                              "current_iterator_step", "last_overflow_iterator_step", "epoch_num", "step_num"})


class NameMapError(CheckpointMismatch):
    """A family's name map does not cover a model's parameters one-to-one."""


def is_optimizer_entry(name: str) -> bool:
    return name in _OPTIMIZER_NAMES or name.startswith(_OPTIMIZER_PREFIXES)


def split_optimizer(arrays: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(weights, names of the optimizer/training-state entries left out)."""
    ignored = [n for n in arrays if is_optimizer_entry(n)]
    return {n: v for n, v in arrays.items() if not is_optimizer_entry(n)}, ignored


def model_shapes(model: str, *, num_classes: int, input_size: int, model_kwargs: Mapping[str, Any] | None = None
                 ) -> dict[str, tuple[int, ...]]:
    """Every parameter's MindSpore name and shape, in definition order (the network is built without
    initialising its weights, so this is cheap even for the large models)."""
    from mindspore.nn.utils import no_init_parameters

    from mindzoo.registry import create_model

    with no_init_parameters():
        net = create_model(model, framework="mindspore", num_classes=num_classes, input_size=input_size,
                           **dict(model_kwargs or {}))
    return {p.name: tuple(p.shape) for p in net.get_parameters()}


def name_map(model: str, names: Sequence[str]) -> dict[str, str]:
    """mindzoo name -> ModelZoo name for ``names`` (a model's parameters); refuses a gap or a collision."""
    if model not in FAMILIES:
        raise NameMapError(f"model {model!r} has no ModelZoo counterpart; ModelZoo checkpoints exist for "
                           f"{', '.join(sorted(FAMILIES))}")
    family = importlib.import_module(f"mindzoo.models.mindspore.{FAMILIES[model]}_modelzoo")
    mapping = family.modelzoo_names(model, list(names))
    unmatched = [n for n in names if n not in mapping]
    if unmatched:
        raise NameMapError(f"the ModelZoo name map of {model} leaves parameter {unmatched[0]!r} unmatched "
                           f"({len(unmatched)} in all)")
    seen: dict[str, str] = {}
    for ours, theirs in mapping.items():
        if theirs in seen:
            raise NameMapError(f"the ModelZoo name map of {model} gives {seen[theirs]!r} and {ours!r} the same "
                               f"name {theirs!r}")
        seen[theirs] = ours
    return mapping


def from_modelzoo(arrays: Mapping[str, np.ndarray], model: str, names: Sequence[str], where: str
                  ) -> tuple[dict[str, np.ndarray], list[str]]:
    """ModelZoo-named weights -> mindzoo names (in ``names`` order), and the optimizer entries left out.

    Every model parameter must be there and every weight must have a place; shapes are the caller's check."""
    weights, ignored = split_optimizer(arrays)
    mapping = name_map(model, names)
    theirs_to_ours = {theirs: ours for ours, theirs in mapping.items()}
    unknown = [n for n in weights if n not in theirs_to_ours]
    if unknown:
        raise CheckpointMismatch(f"{where} is not a ModelZoo {model} checkpoint: parameter {unknown[0]!r} has no "
                                 f"place in {model} ({len(unknown)} in all)")
    missing = [n for n in names if mapping[n] not in weights]
    if missing:
        raise CheckpointMismatch(f"{where} does not fit {model}: no parameter {mapping[missing[0]]!r} "
                                 f"({len(missing)} missing)")
    return {n: weights[mapping[n]] for n in names}, ignored


def to_modelzoo(arrays: Mapping[str, np.ndarray], model: str) -> dict[str, np.ndarray]:
    """mindzoo-named weights -> ModelZoo names, in the order the ModelZoo saves them (where a family defines
    its layers in another order, its file says how: ``modelzoo_order``)."""
    mapping = name_map(model, list(arrays))
    theirs = {mapping[n]: v for n, v in arrays.items()}
    family = importlib.import_module(f"mindzoo.models.mindspore.{FAMILIES[model]}_modelzoo")
    order = getattr(family, "modelzoo_order", list)(list(theirs))
    return {n: theirs[n] for n in order}
