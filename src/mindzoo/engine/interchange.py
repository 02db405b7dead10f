"""``mindzoo checkpoints import|export``: ModelZoo ``.ckpt`` files <-> mindzoo checkpoint folders.

Import reads a ``.ckpt`` the ModelZoo's ``train.py`` wrote (its names: the reference
lists under ``shared/reference/modelzoo_checkpoints``), leaves out and reports the
optimizer entries, renames every parameter with the family's map, checks every
shape against the network the recipe builds and writes ``model.ckpt`` + ``model.json``
— a folder that ``evaluate``, ``export``, ``infer`` (after export) and
``train --init-from`` take like any other. Export writes the reverse: a ``.ckpt`` whose
names the ModelZoo's ``eval.py``/``export.py`` load with ``load_param_into_net``.
Both write atomically: a temporary file or folder renamed into place, or a published prefix.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mindzoo.engine import checkpoint as ckpt
from mindzoo.engine import modelzoo, weights
from mindzoo.errors import ConfigError, MindzooError
from mindzoo.storage import S3Uri

__all__ = ["export_modelzoo", "import_modelzoo"]


def _local_file(src: str, storage: Callable[[], Any], work: Path) -> Path:
    if src.startswith("s3://"):
        local = work / Path(S3Uri.parse(src).key).name
        storage().download_file(S3Uri.parse(src), local)
        return local
    path = Path(src).expanduser()
    if not path.is_file():
        raise MindzooError(f"no such checkpoint file: {src}")
    return path


def _save_ckpt(arrays: dict[str, np.ndarray], path: Path) -> None:
    import mindspore as ms

    ms.save_checkpoint([{"name": n, "data": ms.Tensor(np.ascontiguousarray(v))} for n, v in arrays.items()],
                       str(path))


def _identity(recipe: Any, num_classes: int, size: int, source: dict[str, str]) -> dict[str, Any]:
    """``model.json`` of an imported checkpoint: what train would record, with no run or dataset."""
    from mindzoo.archs import get_data_config
    from mindzoo.engine.plan import scaled_sizes

    sizes = scaled_sizes(recipe, get_data_config(recipe.data_config), size)
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in dict(recipe.model_kwargs).items()}
    if len(sizes) > 1:
        kwargs["extra_input_sizes"] = list(sizes[1:])
    return {"framework": "mindspore", "model": recipe.model, "num_classes": num_classes, "input_size": size,
            "train_sizes": list(sizes), "model_kwargs": kwargs, "data_config": recipe.data_config,
            "recipe": recipe.name, "run_id": "", "dataset_hash": "", "classes": [], "data_overrides": {},
            "init_from": source}


def import_modelzoo(cfg: Any, storage: Callable[[], Any], say: Callable[[str], None]) -> Path | str:
    """Convert ``cfg.src`` (a ModelZoo .ckpt) into a checkpoint folder at ``cfg.dest``."""
    from mindzoo.recipes import load_recipe

    try:
        recipe = load_recipe(cfg.recipe)
    except ConfigError as err:
        raise ConfigError(f"checkpoints.{err.key}", err.problem) from None
    if not cfg.dest.startswith("s3://") and Path(cfg.dest).expanduser().exists():
        raise MindzooError(f"{cfg.dest} exists; give a new folder")
    size = cfg.input_size or _recipe_size(recipe)
    kwargs = dict(recipe.model_kwargs)
    work = Path(tempfile.mkdtemp(prefix="mindzoo-import-"))
    try:
        path = _local_file(cfg.src, storage, work)
        arrays = weights.read_arrays(path, cfg.src)
        base = modelzoo.model_shapes(recipe.model, num_classes=recipe.num_classes, input_size=size,
                                     model_kwargs=kwargs)
        other = modelzoo.model_shapes(recipe.model, num_classes=recipe.num_classes + 1, input_size=size,
                                      model_kwargs=kwargs)
        named, ignored = modelzoo.from_modelzoo(arrays, recipe.model, list(base), cfg.src)
        head = next(n for n in base if n in weights.head_names(base, other))
        classes = int(named[head].shape[0])
        if cfg.num_classes and classes != cfg.num_classes:
            raise ckpt.CheckpointMismatch(f"{cfg.src} has {classes} classes ({modelzoo.name_map(recipe.model, list(base))[head]}"
                                          f" is {tuple(named[head].shape)}), not --num-classes {cfg.num_classes}")
        shapes = base if classes == recipe.num_classes else modelzoo.model_shapes(
            recipe.model, num_classes=classes, input_size=size, model_kwargs=kwargs)
        fitted = weights.fit(named, model=recipe.model, shapes=shapes, heads=set(), num_classes=classes,
                             where=cfg.src, strict=True)
        source = {"uri": cfg.src, "sha256": weights.sha256_file(path), "names": "modelzoo"}
        folder = work / "checkpoint"
        folder.mkdir()
        _save_ckpt(fitted.arrays, folder / ckpt.WEIGHTS)
        identity = _identity(recipe, classes, size, source)
        ckpt.write_folder(folder, identity, {"imported_from": source, "ignored": ignored})
        if ignored:
            say(f"ignored {len(ignored)} optimizer entries of {cfg.src}: {weights.summarise(ignored)}")
        say(f"{recipe.model} ({classes} classes): {len(fitted.arrays)} parameters renamed from ModelZoo names")
        return _place_folder(folder, cfg.dest, storage, identity)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _recipe_size(recipe: Any) -> int:
    from mindzoo.archs import get_data_config

    return get_data_config(recipe.data_config).input_size


def _place_folder(folder: Path, dest: str, storage: Callable[[], Any], identity: dict[str, Any]) -> Path | str:
    if dest.startswith("s3://"):
        storage().publish(folder, S3Uri.parse(dest), meta={"identity": identity, "state": {}})
        return dest
    target = Path(dest).expanduser()
    if target.exists():
        raise MindzooError(f"{dest} exists; give a new folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    shutil.copytree(folder, staging, dirs_exist_ok=True)
    os.replace(staging, target)  # same file system: the folder appears whole or not at all
    return target


def export_modelzoo(cfg: Any, storage: Callable[[], Any], say: Callable[[str], None]) -> str:
    """Write ``cfg.src`` (a mindzoo checkpoint) as a ModelZoo-named .ckpt at ``cfg.dest``."""
    from mindzoo.export import source

    work = Path(tempfile.mkdtemp(prefix="mindzoo-export-ckpt-"))
    try:
        point = source.resolve(cfg.src, storage() if cfg.src.startswith("s3://") else None, work)
        arrays = weights.read_arrays(ckpt.weights_file(point.folder), cfg.src)
        shapes = modelzoo.model_shapes(point.model, num_classes=point.num_classes, input_size=point.input_size,
                                       model_kwargs=point.model_kwargs)
        fitted = weights.fit(arrays, model=point.model, shapes=shapes, heads=set(), num_classes=point.num_classes,
                             where=cfg.src, strict=True)
        theirs = modelzoo.to_modelzoo(fitted.arrays, point.model)
        out = work / "out.ckpt"
        _save_ckpt(theirs, out)
        if cfg.dest.startswith("s3://"):
            storage().upload_file(out, S3Uri.parse(cfg.dest))
        else:
            target = Path(cfg.dest).expanduser()
            target.parent.mkdir(parents=True, exist_ok=True)
            staged = target.parent / f".{target.name}.partial"
            shutil.copyfile(out, staged)
            os.replace(staged, target)
        say(f"{point.model} ({point.num_classes} classes): {len(theirs)} parameters in ModelZoo names")
        return cfg.dest
    finally:
        shutil.rmtree(work, ignore_errors=True)
