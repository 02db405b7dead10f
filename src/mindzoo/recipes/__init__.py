"""The ModelZoo training recipes as YAML files, loaded into frozen dataclasses.

>>> r = load_recipe("resnet50_bam", {"optim.weight_decay": "0", "epochs": "3"})
>>> r.optim.weight_decay, r.epochs
(0.0, 3)

Each ``<name>.yaml`` next to this file is one recipe; numbers follow the facts
sheet (``modelzoo_facts.md``), cited in YAML comments. Overrides are dotted keys
with string values parsed to the field's type; every failure is a
:class:`~mindzoo.errors.ConfigError` naming the key (``recipe.epochs: must be > 0``).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mindzoo.configkit import coerce
from mindzoo.errors import ConfigError
from mindzoo.recipes.schema import (
    SCHEDULES, AmpConfig, CheckpointConfig, CosinePerEpochSchedule, EvalConfig, GenetCosineSchedule,
    LinearSchedule, LossConfig, LossScaleConfig, LrScalingConfig, MultiStepSchedule, NoDecayConfig, OptimConfig,
    Recipe, Schedule, StepFractionSchedule, WarmupCosineSchedule,
)

__all__ = [
    "AmpConfig", "CheckpointConfig", "CosinePerEpochSchedule", "EvalConfig", "GenetCosineSchedule",
    "LinearSchedule", "LossConfig", "LossScaleConfig", "LrScalingConfig", "MultiStepSchedule", "NoDecayConfig",
    "OptimConfig", "Recipe", "Schedule", "StepFractionSchedule", "WarmupCosineSchedule", "list_recipes", "load_recipe",
    "recipe_path", "to_flat_dict",
]

ROOT = "recipe"


def list_recipes() -> list[str]:
    """Names of the bundled recipes (YAML file stems), sorted."""
    return sorted(p.name[:-5] for p in resources.files(__name__).iterdir() if p.name.endswith(".yaml"))


def recipe_path(name: str) -> Any:
    """The bundled YAML of recipe ``name``."""
    if name not in list_recipes():
        raise ConfigError(ROOT, f"unknown recipe {name!r}; available: {', '.join(list_recipes())}")
    return resources.files(__name__).joinpath(f"{name}.yaml")


def load_recipe(name_or_path: str | Path, overrides: Mapping[str, str] = {}) -> Recipe:  # noqa: B006
    """Load a bundled recipe by name, or a YAML file by path, then apply dotted-key overrides."""
    text_path = str(name_or_path)
    if isinstance(name_or_path, Path) or text_path.endswith((".yaml", ".yml")):
        path = Path(name_or_path)
        if not path.is_file():
            raise ConfigError(ROOT, f"recipe file {text_path} not found")
        name, text = path.stem, path.read_text()
    else:
        name, text = text_path, recipe_path(text_path).read_text()
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(ROOT, f"{text_path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(ROOT, f"{text_path} must hold a mapping of recipe keys")
    raw.setdefault("name", name)
    # A kind change comes first so the other schedule keys are checked against the new kind.
    for key in sorted(overrides, key=lambda k: k != "schedule.kind"):
        _apply_override(raw, key, overrides[key])
    return _build(Recipe, raw, ROOT)


def to_flat_dict(recipe: Recipe) -> dict[str, Any]:
    """``{"optim.weight_decay": 0.0001, "schedule.kind": ...}`` of every leaf (for MLflow params)."""
    return _flatten(recipe, "")


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if dataclasses.is_dataclass(value):
        items = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    elif isinstance(value, Mapping):
        items = value.items()
    else:
        return {prefix.rstrip("."): value}
    out: dict[str, Any] = {}
    for name, item in items:
        out.update(_flatten(item, f"{prefix}{name}."))
    return out


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _schedule_class(data: Any, key: str) -> type:
    kind = data.get("kind") if isinstance(data, Mapping) else None
    if kind not in SCHEDULES:
        raise ConfigError(f"{key}.kind", f"must be one of {', '.join(SCHEDULES)} (got {kind!r})")
    return SCHEDULES[kind]


def _is_mapping(tp: Any) -> bool:
    return typing.get_origin(tp) in (Mapping, dict)


def _apply_override(raw: dict[str, Any], dotted: str, value: str) -> None:
    """Parse ``value`` to the type of field ``dotted`` and set it in the raw recipe mapping."""
    parts = dotted.split(".")
    cls: Any = Recipe
    node = raw
    for i, part in enumerate(parts):
        key = ".".join([ROOT, *parts[: i + 1]])
        if cls is None:  # inside a free-form mapping (model_kwargs): YAML-typed scalars
            node[part] = yaml.safe_load(value) if i == len(parts) - 1 else node.setdefault(part, {})
            node = node[part]
            continue
        types = _field_types(cls)
        if part not in types:
            raise ConfigError(key, f"unknown key; known: {', '.join(types)}")
        tp = types[part]
        last = i == len(parts) - 1
        if tp == Schedule:
            if parts[i + 1:] == ["kind"]:  # a new kind starts an empty section of that kind
                _schedule_class({"kind": value}, key)
                node[part] = {"kind": value}
                return
            tp = _schedule_class(node.get(part), key)
        if last:
            if dataclasses.is_dataclass(tp) or _is_mapping(tp):
                raise ConfigError(key, f"is a section; set one of its keys ({key}.<name>)")
            node[part] = coerce(value, tp, key)
            return
        if not (dataclasses.is_dataclass(tp) or _is_mapping(tp)):
            raise ConfigError(key, "is a value, not a section")
        child = node.get(part)
        node[part] = child = dict(child) if isinstance(child, Mapping) else {}
        node, cls = child, (tp if dataclasses.is_dataclass(tp) else None)


def _build(cls: type, data: Any, key: str) -> Any:
    """Construct dataclass ``cls`` from a raw mapping; every error names its dotted key."""
    if not isinstance(data, Mapping):
        raise ConfigError(key, f"must be a mapping of keys (got {data!r})")
    types = _field_types(cls)
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}", f"unknown key; known: {', '.join(types)}")
    kwargs: dict[str, Any] = {}
    for name, tp in types.items():
        if name not in data:
            continue
        value, sub = data[name], f"{key}.{name}"
        if tp == Schedule:
            kwargs[name] = _build(_schedule_class(value, sub), value, sub)
        elif dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, sub)
        elif _is_mapping(tp):
            if not isinstance(value, Mapping):
                raise ConfigError(sub, "must be a mapping")
            kwargs[name] = dict(value)
        else:
            kwargs[name] = coerce(value, tp, sub)
    missing = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{key}.{missing[0]}", "required")
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{key}.{err.key}", err.problem) from None
