"""``mindzoo export``: a checkpoint → MindIR (+ ONNX, AIR on Ascend), parity-checked, published, registered.

Orchestration only; the work lives in :mod:`mindzoo.export`. The network is
rebuilt from the checkpoint's recorded identity, exported, and the MindIR is
loaded back and compared with it on a fixed batch (the step fails above
``--tolerance``). The files, label map, preprocessing description and model
card are published to MinIO (next to the training run by default) and
registered as a new version of the recipe's model in the MLflow Model Registry.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mindzoo import localdir
from mindzoo.config import ExportConfig
from mindzoo.configkit import to_flat_dict
from mindzoo.errors import ConfigError
from mindzoo.steps.context import StepContext, step_command


def run(cfg: ExportConfig, ctx: StepContext) -> None:
    from mindzoo import export as ex
    from mindzoo.export import card, formats, parity, source

    wanted = formats.plan_formats(cfg.formats, cfg.device)
    uri = _registry_uri(cfg, ctx)
    work = Path(tempfile.mkdtemp(prefix="mindzoo-export-", dir=_work_root(cfg)))
    try:
        point = source.resolve(cfg.checkpoint, ctx.storage, work, model=cfg.model, num_classes=cfg.num_classes,
                               input_size=cfg.input_size)
        stem = cfg.name or point.model
        shape = (cfg.batch_size, 3, point.input_size, point.input_size)
        prefix = _output_prefix(cfg, stem)
        ctx.say(f"{point.model} ({point.num_classes} classes) at {list(shape)}: {', '.join(wanted)} -> {prefix}")
        ctx.start_tracking(_experiment(point), f"export-{stem}", params=_params(cfg, point),
                           tags={"export_uri": str(prefix)})
        source.setup(cfg.device)
        net = source.build_network(point)
        out = work / "export"
        made = formats.export(net, shape, out, stem, wanted)
        diff = parity.check(net, out / f"{stem}.mindir", shape, cfg.tolerance)
        for item in made:
            ctx.say(f"{item.format}: {item.path.name} ({item.path.stat().st_size:,} bytes)" if item.ok
                    else f"{item.format}: not made: {item.error}")
        ctx.say(f"parity: max abs logit difference {diff:.3g} (tolerance {cfg.tolerance:g})")
        described = [m.describe() for m in made]
        prep = card.preprocessing(point.data_config, shape)
        lin, metrics = card.lineage(point), point.metrics()
        body = {"model": point.model, "num_classes": point.num_classes, "input_shape": list(shape),
                "checkpoint": cfg.checkpoint, "formats": described, "parity_max_abs_diff": diff,
                "tolerance": cfg.tolerance, "metrics": metrics, "lineage": lin,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        title = f"{cfg.registered_model or point.identity.get('recipe') or point.model}: {stem} MindIR"
        readme = card.markdown(title=title, point=point, source=cfg.checkpoint, formats=described, prep=prep,
                               parity=diff, tolerance=cfg.tolerance, metrics=metrics, lin=lin)
        _write(out, {ex.EXPORT_JSON: body, ex.PREPROCESSING_JSON: prep,
                     ex.LABELS_JSON: {c: i for i, c in enumerate(point.classes)}}, readme)
        if cfg.local_dir:  # swapped in whole: a killed export leaves the old folder or the new one
            target = Path(cfg.local_dir).expanduser().absolute()
            staged = localdir.staging_for(target)
            try:
                shutil.copytree(out, staged, dirs_exist_ok=True)
                localdir.replace_dir(staged, target)
            finally:
                shutil.rmtree(staged, ignore_errors=True)
        published = ctx.storage.publish(out, prefix, meta=body)
        ctx.say(f"published {prefix} (version {published.version})")
        version = _register(cfg, ctx, uri, point, out, readme, prefix, lin) if uri else ""
        _outputs(ctx, cfg, prefix, described, shape, diff, version, point)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _work_root(cfg: ExportConfig) -> str | None:
    if not cfg.cache_dir:
        return None
    root = Path(cfg.cache_dir).expanduser() / "export"
    root.mkdir(parents=True, exist_ok=True)
    return str(root)


def _registry_uri(cfg: ExportConfig, ctx: StepContext) -> str:
    """The MLflow URI to register with ('' when --no-register); a clear error when there is none."""
    if not cfg.register:
        return ""
    from mindzoo.endpoints import resolve_tracking_uri

    uri = resolve_tracking_uri(ctx.tracking_cfg) if ctx.tracking_cfg.enabled else ""
    if not uri:
        raise ConfigError("export.register", "registering needs an MLflow tracking server (--tracking-uri, "
                                             "$MLFLOW_TRACKING_URI or the local stack); pass --no-register to skip")
    return uri


def _output_prefix(cfg: ExportConfig, stem: str) -> Any:
    from mindzoo.export.source import run_prefix
    from mindzoo.storage import S3Uri

    if cfg.output:
        return S3Uri.parse(cfg.output)
    run = run_prefix(cfg.checkpoint)
    if run is not None:
        return run.join("export")
    return S3Uri("mindzoo", f"exports/{stem}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")


def _experiment(point: Any) -> str:
    from mindzoo.runs.layout import experiment_name

    return experiment_name(point.model, str(point.identity.get("dataset_hash", "")))


def _params(cfg: ExportConfig, point: Any) -> dict[str, Any]:
    from mindzoo.runs.layout import step_params

    return {**step_params("export", to_flat_dict(cfg)), "model": point.model, "engine": "mindspore",
            "device": cfg.device, "dataset_hash": str(point.identity.get("dataset_hash", ""))}


def _write(out: Path, documents: dict[str, Any], readme: str) -> None:
    from mindzoo.export import CARD

    for name, body in documents.items():
        (out / name).write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    (out / CARD).write_text(readme)


def _register(cfg: ExportConfig, ctx: StepContext, uri: str, point: Any, out: Path, readme: str,
              prefix: Any, lin: dict[str, str]) -> str:
    from mindzoo.errors import MindzooError
    from mindzoo.export import registry

    run_id = getattr(ctx.tracker, "run_id", None)
    if not run_id:
        raise MindzooError(f"cannot register: the MLflow run could not be created at {uri}")
    name = cfg.registered_model or point.identity.get("recipe") or point.model
    # The version carries the card's lineage (the image digest and git sha the export ran in among it).
    tags = {"model": point.model, "export_uri": str(prefix), **{k: v for k, v in lin.items() if v and k in (
        "dataset_hash", "train_run_id", "git_sha", "image", "image_digest")}}
    version = registry.register(uri, run_id, out, name, description=readme, tags=tags)
    ctx.say(f"registered {name} version {version} (runs:/{run_id}/model)")
    ctx.tracker.set_tags({"registered_model": name, "registered_version": version})
    return version


def _outputs(ctx: StepContext, cfg: ExportConfig, prefix: Any, described: list[dict[str, Any]],
             shape: tuple[int, ...], diff: float, version: str, point: Any) -> None:
    mindir = next(d for d in described if d["format"] == "mindir")
    meta = {"format": "mindir", "file": mindir["file"], "input_shape": list(shape),
            "size_bytes": mindir["size_bytes"], "sha256": mindir["sha256"], "model": point.model,
            "num_classes": point.num_classes, "parity_max_abs_diff": diff,
            "formats": [d["format"] for d in described if d["made"]]}
    for d in described:
        if not d["made"]:
            meta[f"{d['format']}_not_made"] = d["reason"]
    if version:
        meta.update({"registered_model": cfg.registered_model or point.identity.get("recipe") or point.model,
                     "registered_version": version})
    ctx.kfp.point("model", str(prefix), meta)
    from mindzoo.runs.layout import Metric

    ctx.tracker.log_metrics({Metric.EXPORT_PARITY: diff, Metric.EXPORT_MINDIR_BYTES: float(mindir["size_bytes"])})


command = step_command(
    "export", ExportConfig, run,
    help="Export a checkpoint (local or s3://) of any registered model to MindIR (always), ONNX (where every "
         "op exports) and AIR (Ascend only); check the MindIR's logits against the checkpoint; publish the "
         "files, label map, preprocessing and a model card to MinIO and register them in MLflow.",
)
