"""What a training run is, resolved before anything heavy: recipe, model, data, sizes, run prefix.

Every user mistake found here is a one-line error naming the flag
(``train.recipe.optim.weight_decay: must be >= 0``, ``train.model: unknown
model ...``) or the data (class-count mismatch) — before a framework is imported.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mindzoo.archs import DataConfig, get_data_config
from mindzoo.configkit import to_flat_dict
from mindzoo.data import fit
from mindzoo.errors import ConfigError, DataError
from mindzoo.runs.layout import pipeline_train_run_id
from mindzoo.storage import S3Uri

__all__ = ["TrainPlan", "amp_settings", "apply_data_overrides", "load_dataset", "split_overrides", "plan_training", "resolve_recipe", "scaled_sizes"]


@dataclass(frozen=True)
class TrainPlan:
    model: str
    recipe: Any  # mindzoo.recipes.Recipe
    recipe_source: str
    overrides: dict[str, str]
    data_cfg: DataConfig  # at the run's input size
    input_size: int
    train_sizes: tuple[int, ...]  # per-epoch cycle (SPPNet multi-size), first = input_size
    dataset_uri: str
    local_data: Path
    dataset: dict[str, Any] = field(repr=False)  # dataset.json
    run_id: str = ""
    run_prefix: S3Uri = S3Uri("mindzoo")
    engine: str = "mindspore"  # the framework that trains (and writes the checkpoints)
    init_uri: str = ""  # --init-from as given
    init_from: dict[str, Any] = field(default_factory=dict)  # what was loaded: uri, sha256, names, re-initialised

    @property
    def has_val(self) -> bool:
        """False for a dataset published with --train-only: training then never evaluates."""
        return "val" in self.dataset.get("splits", {})

    @property
    def dataset_hash(self) -> str:
        return str(self.dataset.get("content_hash", ""))

    @property
    def experiment(self) -> str:
        from mindzoo.runs.layout import experiment_name

        return experiment_name(self.model, self.dataset_hash)

    @property
    def data_overrides(self) -> dict[str, str]:
        return split_overrides(self.overrides)[1]

    @property
    def model_kwargs(self) -> dict[str, Any]:
        kwargs = dict(self.recipe.model_kwargs)
        if len(self.train_sizes) > 1:
            kwargs["extra_input_sizes"] = tuple(self.train_sizes[1:])
        return kwargs

    def identity(self) -> dict[str, Any]:
        """What a checkpoint of this run is (``model.json``); evaluate and resume check it."""
        return {"framework": self.engine, "model": self.model, "num_classes": self.recipe.num_classes,
                "input_size": self.input_size, "train_sizes": list(self.train_sizes),
                "model_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in self.model_kwargs.items()},
                "data_config": self.recipe.data_config, "recipe": self.recipe.name, "run_id": self.run_id,
                "dataset_hash": self.dataset_hash, "classes": list(self.dataset.get("classes", [])),
                "data_overrides": self.data_overrides, **({"init_from": self.init_from} if self.init_from else {})}

    def settings(self, steps_per_epoch: int, world_size: int) -> dict[str, Any]:
        """Everything a resumed run must share with the run it continues."""
        from mindzoo.recipes import to_flat_dict as recipe_flat

        # A fixed world-size rule changes no rate: left out, runs recorded before there were rules still resume.
        skip = ("model_kwargs", "lr_scaling") if self.recipe.lr_scaling.rule == "fixed" else ("model_kwargs",)
        flat = {f"recipe.{k}": (list(v) if isinstance(v, tuple) else v) for k, v in recipe_flat(self.recipe).items()
                if not k.startswith(skip)}
        # The engine only when not MindSpore: runs recorded before there was a choice still resume.
        engine = {"engine": self.engine} if self.engine != "mindspore" else {}
        engine.update({"init_from": self.init_uri} if self.init_uri else {})  # likewise only when given
        return {**flat, "model": self.model, **engine, "input_size": self.input_size,
                "dataset_hash": self.dataset_hash,
                **{f"data.{k}": v for k, v in self.data_overrides.items()},
                "steps_per_epoch": steps_per_epoch, "world_size": world_size}


def amp_settings(recipe: Any, device: str) -> tuple[str, bool]:
    """(AMP level on ``device``, keep BatchNorm in fp32) of a recipe."""
    amp = getattr(recipe, "amp_level", None) or getattr(recipe, "amp")
    keep = getattr(recipe, "keep_batchnorm_fp32", None)
    return amp.level(device), bool(getattr(amp, "keep_batchnorm_fp32", False) if keep is None else keep)


DATA_PREFIX = "data."


def split_overrides(overrides: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(recipe overrides, data-config overrides): ``data.<key>`` keys change the recipe's data config."""
    data = {k[len(DATA_PREFIX):]: v for k, v in overrides.items() if k.startswith(DATA_PREFIX)}
    return {k: v for k, v in overrides.items() if not k.startswith(DATA_PREFIX)}, data


def apply_data_overrides(cfg: DataConfig, overrides: dict[str, str], root: str = "train.data") -> DataConfig:
    """``{"train.hflip": "0"}`` applied to a data config (values parsed to each field's type)."""
    for key, value in overrides.items():
        if key in ("input_size", "name"):
            raise ConfigError(f"{root}.{key}", "is set by --input-size and the recipe, not by an override")
        cfg = _replace_path(cfg, key.split("."), value, f"{root}.{key}")
    return cfg


def _replace_path(obj: Any, path: list[str], value: str, key: str) -> Any:
    import dataclasses
    import typing

    from mindzoo.configkit import coerce

    hints = typing.get_type_hints(type(obj))
    if path[0] not in hints:
        raise ConfigError(key, f"unknown key; known: {', '.join(f.name for f in dataclasses.fields(obj))}")
    tp = hints[path[0]]
    inner = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)] or [tp]
    current = getattr(obj, path[0])
    if len(path) > 1:
        if not dataclasses.is_dataclass(inner[0]):
            raise ConfigError(key, "is a value, not a section")
        new = _replace_path(current if current is not None else inner[0](), path[1:], value, key)
    elif dataclasses.is_dataclass(inner[0]):
        if str(value).lower() not in ("none", "null", ""):
            raise ConfigError(key, "is a section: set one of its keys, or none to drop it")
        new = None
    else:
        new = coerce(value, tp, key)
    try:
        return dataclasses.replace(obj, **{path[0]: new})
    except ConfigError as err:
        raise ConfigError(key, err.problem) from None


def resolve_recipe(model: str, recipe: str, overrides: dict[str, str]) -> tuple[str, Any, str]:
    """(model, Recipe, recipe source); errors name ``train.*`` keys."""
    from mindzoo.recipes import list_recipes, load_recipe
    from mindzoo.registry import list_models

    if model and model not in list_models():
        raise ConfigError("train.model", f"unknown model {model!r}; available: {', '.join(list_models())}")
    if not recipe:
        if not model:
            raise ConfigError("train.model", "give --model or --recipe")
        recipe = model if model in list_recipes() else _first_recipe_of(model)
    if model:
        overrides = {"model": model, **overrides}
    try:
        loaded = load_recipe(recipe, overrides)
    except ConfigError as err:
        raise ConfigError(f"train.{err.key}", err.problem) from None
    return loaded.model, loaded, recipe


def _first_recipe_of(model: str) -> str:
    from mindzoo.recipes import list_recipes, load_recipe

    for name in list_recipes():
        if load_recipe(name).model == model:
            return name
    raise ConfigError("train.recipe", f"no bundled recipe trains {model!r}; pass --recipe FILE.yaml")


def scaled_sizes(recipe: Any, data_cfg: DataConfig, input_size: int) -> tuple[int, ...]:
    """The per-epoch input sizes at ``input_size`` (the recipe's multi-size cycle scaled along)."""
    if not recipe.multi_size:
        return (input_size,)
    scale = input_size / recipe.multi_size[0]
    return (input_size, *(round(s * scale) for s in recipe.multi_size[1:]))


def load_dataset(uri: str, storage: Any, cache_dir: str) -> tuple[Path, dict[str, Any]]:
    """A local copy of a converted dataset and its ``dataset.json``."""
    from mindzoo.data import cache, manifest

    root = Path(cache_dir).expanduser() / "datasets" if cache_dir else None
    local = cache.local_dataset(uri, storage=storage if uri.startswith("s3://") else None, cache_dir=root)
    return local, manifest.load(local)


def plan_training(cfg: Any, storage: Any) -> TrainPlan:
    """Resolve a :class:`mindzoo.config.TrainConfig` into a :class:`TrainPlan`."""
    recipe_overrides, data_overrides = split_overrides(cfg.overrides())
    model, recipe, source = resolve_recipe(cfg.model, cfg.recipe, recipe_overrides)
    base = get_data_config(recipe.data_config)
    size = cfg.input_size or base.input_size
    data_cfg = apply_data_overrides(base if size == base.input_size else base.at_size(size), data_overrides)
    local, info = load_dataset(cfg.dataset, storage, cfg.cache_dir)
    fit.check(info, data_cfg, train_splits=("train",), eval_splits=("val",))  # one line, not a pipeline traceback
    if int(info["num_classes"]) != recipe.num_classes:
        raise DataError(f"dataset {info.get('name', cfg.dataset)} has {info['num_classes']} classes but recipe "
                        f"{recipe.name} trains {recipe.num_classes}: pass --set num_classes={info['num_classes']}")
    run_id = (cfg.run_id or pipeline_train_run_id()
              or f"{model}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}")
    return TrainPlan(model, recipe, source, cfg.overrides(), data_cfg, size, scaled_sizes(recipe, data_cfg, size),
                     cfg.dataset, local, info, run_id, S3Uri.parse(cfg.output).join(run_id),
                     getattr(cfg, "engine", "mindspore"), getattr(cfg, "init_from", ""))


def tracking_params(plan: TrainPlan, cfg: Any, world_size: int) -> dict[str, Any]:
    """MLflow parameters: the flattened recipe (``recipe.*``) plus the run's own settings."""
    from mindzoo.engine.schedules import base_lr, world_schedule
    from mindzoo.recipes import to_flat_dict as recipe_flat

    params = {f"recipe.{k}": v for k, v in recipe_flat(plan.recipe).items()}
    params.update({
        "model": plan.model, "engine": plan.engine, "device": cfg.device, "world_size": world_size,
        "batch_size": plan.recipe.batch_size, "global_batch_size": plan.recipe.batch_size * world_size,
        "lr": base_lr(world_schedule(plan.recipe, world_size)[0]),  # the rate used at this world size
        "epochs": plan.recipe.epochs, "dataset_hash": plan.dataset_hash,
        "dataset": plan.dataset_uri, "input_size": plan.input_size, "recipe": plan.recipe_source,
        "overrides": ";".join(f"{k}={v}" for k, v in plan.overrides.items()) or "-", "run_id": plan.run_id,
        "output": str(plan.run_prefix), "mode": cfg.mode,
    })
    params.update({f"train.{k}": v for k, v in to_flat_dict(cfg).items() if k in
                   ("steps_per_epoch", "checkpoint_every_steps", "threads", "data_workers", "workers", "freeze",
                    "head_lr_mult", "strict")})
    if plan.init_from:  # the weights the run started from
        params.update({"init_from": plan.init_from.get("uri", ""), "init_from_sha256": plan.init_from.get("sha256", ""),
                       "init_reinitialised": ",".join(plan.init_from.get("reinitialised", [])) or "-"})
    import os

    # Set by the image build and the pipeline launcher (the same variables the step context tags runs with).
    params.update({name: os.environ[var] for name, var in (("image", "MINDZOO_IMAGE"), ("git_sha", "MINDZOO_GIT_SHA"))
                   if os.environ.get(var)})
    return params
