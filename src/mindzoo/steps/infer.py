"""``mindzoo infer`` (component ``infer310``): a MindIR, batch 1, over a validation set, as the 310 flow.

Orchestration only; the work lives in :mod:`mindzoo.infer`. Writes ``acc.log``
(the lines the recipe's own 310 postprocess prints, e.g. ``Total data: N, top1 accuracy: X, top5
accuracy: Y.``),
``predictions.csv`` and ``latency.json`` to ``--output-dir``; logs them to
MLflow and returns them as KFP ``Metrics``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from mindzoo.config import InferConfig
from mindzoo.configkit import to_flat_dict
from mindzoo.engine.checkpoint import read_json
from mindzoo.errors import ConfigError, DataError, MindzooError
from mindzoo.runs.layout import infer_metrics, step_params
from mindzoo.steps.context import StepContext, step_command

def run(cfg: InferConfig, ctx: StepContext) -> None:
    from mindzoo.export import mindir
    from mindzoo.infer import inputs, loop, report, runtime
    from mindzoo.infer.preprocess import Preprocessor

    runtime.require(cfg.device)  # before fetching the model: a wrong device is one line, at once
    path, folder = _mindir(cfg, ctx)
    shape = mindir.input_shape(path)
    data_cfg = _data_config(cfg, folder, shape, path)
    images = inputs.open_images(cfg.data, split=cfg.split, label_file=cfg.label_file, storage=lambda: ctx.storage,
                                cache_dir=Path(cfg.cache_dir).expanduser() / "datasets" if cfg.cache_dir else None)
    engine = runtime.select(cfg.device, path, cfg.device_id)
    ctx.say(f"{path.name} {list(shape)} on {engine.name}; {images.count:,} images ({images.kind}) from "
            f"{images.where}; preprocessing {data_cfg.name} at {data_cfg.input_size}px")
    experiment, lineage = _lineage(folder)
    ctx.start_tracking(experiment, f"infer-{path.stem}", params={
        **step_params("infer", to_flat_dict(cfg)), **lineage, "engine": "mindspore", "device": cfg.device,
        "runtime": engine.name, "data_config": data_cfg.name})
    result = loop.run(images, Preprocessor(data_cfg), engine, warmup=cfg.warmup, max_images=cfg.max_images,
                      progress=lambda i, n: ctx.say(f"{i:,}/{n:,} images"))
    out = Path(cfg.output_dir).expanduser()
    paths = report.write(result, out, {"runtime": engine.name, "mindir": str(path), "data": cfg.data},
                         data_cfg.name)
    metrics = result.metrics()
    for line in report.acc_lines(result, data_cfg.name):
        ctx.say(line)
    if result.latency():
        lat = result.latency()
        ctx.say(f"latency ms/image: mean {lat['latency_mean_ms']:.2f} p50 {lat['latency_p50_ms']:.2f} "
                f"p90 {lat['latency_p90_ms']:.2f} p99 {lat['latency_p99_ms']:.2f} "
                f"({lat['images_per_second']:.1f} img/s); runtime: {engine.name}")
    _track(ctx, metrics, paths, engine.name)
    _check_bad(result, cfg, out)
    if cfg.output:
        from mindzoo.storage import S3Uri

        ctx.storage.publish(out, S3Uri.parse(cfg.output), meta={**metrics, "runtime": engine.name})
        ctx.say(f"published results to {cfg.output}")
    _outputs(ctx, metrics, engine.name, out)


def _lineage(folder: Path) -> tuple[str, dict[str, str]]:
    """(MLflow experiment, model/dataset params) from the export.json `mindzoo export` wrote next to the MindIR."""
    from mindzoo.export import EXPORT_JSON
    from mindzoo.runs.layout import experiment_name

    body = read_json(folder / EXPORT_JSON)
    model, digest = str(body.get("model", "")), str(body.get("lineage", {}).get("dataset_hash", ""))
    return experiment_name(model, digest), {k: v for k, v in {"model": model, "dataset_hash": digest}.items() if v}


def _mindir(cfg: InferConfig, ctx: StepContext) -> tuple[Path, Path]:
    """(the .mindir file, the folder holding it and its preprocessing.json)."""
    source = cfg.model
    if source.startswith("models:/"):  # a registered version: its export's published prefix
        from mindzoo.endpoints import resolve_tracking_uri
        from mindzoo.export.registry import export_uri

        source = export_uri(source, resolve_tracking_uri(ctx.tracking_cfg))
        ctx.say(f"{cfg.model} is {source}")
    if source.startswith("s3://"):
        from mindzoo.paths import cache_dir
        from mindzoo.storage import S3Uri

        root = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else cache_dir()
        local = model_cache(root, S3Uri.parse(source))
        local.parent.mkdir(parents=True, exist_ok=True)
        ctx.storage.fetch(S3Uri.parse(source), local)
        folder = local
    else:
        path = Path(source).expanduser()
        if path.is_file():
            return path, path.parent
        if not path.is_dir():
            raise MindzooError(f"no such MindIR file or folder: {source}")
        folder = path
    found = sorted(folder.glob("*.mindir"))
    if len(found) != 1:
        raise MindzooError(f"{source} holds {len(found)} .mindir files; give the file itself")
    return found[0], folder


def model_cache(root: Path, uri: Any) -> Path:
    """The local copy of a published model: keyed by bucket and key (two stores' same key never share it),
    named by a digest so no URI can lead outside ``root / "models"``."""
    import hashlib
    import re

    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{uri.bucket}_{uri.key}").strip("._")[-60:]
    return root / "models" / f"{readable}-{hashlib.sha256(str(uri).encode()).hexdigest()[:16]}"


def _data_config(cfg: InferConfig, folder: Path, shape: tuple[int, ...], path: Path) -> Any:
    from mindzoo.archs import get_data_config
    from mindzoo.export import PREPROCESSING_JSON

    if len(shape) != 4 or shape[1] != 3 or shape[2] != shape[3]:
        raise DataError(f"{path.name} takes input {list(shape)}; inference needs a [1, 3, S, S] image input")
    if shape[0] != 1:
        raise DataError(f"{path.name} was exported with batch {shape[0]} ({list(shape)}); the 310 flow runs batch 1: "
                        "export again with --batch-size 1")
    name = cfg.data_config
    recorded = folder / PREPROCESSING_JSON
    if not name and recorded.is_file():
        name = str((read_json(recorded).get("data_config") or {}).get("name", ""))
        if not name:
            raise DataError(f"{recorded} names no data_config.name; pass --data-config")
    if not name:
        raise ConfigError("infer.data_config", f"no {PREPROCESSING_JSON} next to {path.name}; pass --data-config")
    base = get_data_config(name)
    size = cfg.input_size or shape[2]
    if size != shape[2]:
        raise DataError(f"input shape mismatch: {path.name} expects {list(shape)} but --input-size {size} gives "
                        f"[1, 3, {size}, {size}]")
    return base if size == base.input_size else base.at_size(size)


def _check_bad(result: Any, cfg: InferConfig, out: Path) -> None:
    seen = result.images + len(result.bad)
    if not seen:
        raise DataError(f"no images to score in {cfg.data}")
    if result.bad:
        first, why = result.bad[0]
        fraction = len(result.bad) / seen
        message = (f"{len(result.bad):,} of {seen:,} images could not be decoded ({fraction:.2%}); first: "
                   f"{first}: {why} (all listed in {out / 'bad_images.txt'})")
        if fraction > cfg.max_bad_fraction:
            raise DataError(message + f"; more than --max-bad-fraction {cfg.max_bad_fraction:g}")
        print(f"warning: {message}", file=sys.stderr)


def _track(ctx: StepContext, metrics: dict[str, float], paths: dict[str, Path], runtime_name: str) -> None:
    ctx.tracker.log_metrics(infer_metrics(metrics))
    ctx.tracker.set_tags({"runtime": runtime_name})
    for path in paths.values():
        ctx.tracker.log_artifact(path, "infer")


def _outputs(ctx: StepContext, metrics: dict[str, float], runtime_name: str, out: Path) -> None:
    ctx.kfp.set_artifact("metrics", metadata={k: round(v, 6) for k, v in metrics.items()})
    artifact = ctx.kfp.output_artifact("results")
    if artifact is not None:
        target = Path(artifact.path)
        shutil.copytree(out, target, dirs_exist_ok=True)
        ctx.kfp.set_artifact("results", metadata={"runtime": runtime_name, "images": int(metrics["images"])})


command = step_command(
    "infer", InferConfig, run,
    help="Run an exported MindIR one image at a time (batch 1, as the recipes' Ascend 310 flow) over a converted "
         "dataset, a folder of class subfolders, or a flat folder plus label file, with the model's eval "
         "preprocessing. Writes acc.log, predictions.csv and latency.json; --device ascend310/ascend310p runs "
         "on MindSpore Lite's Ascend backend.",
)
