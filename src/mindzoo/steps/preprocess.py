"""``mindzoo preprocess``: a raw dataset → validated MindRecord shards in MinIO, with a data report.

Orchestration only; the work lives in :mod:`mindzoo.data`. The output prefix
is ``<output>/<content hash>``: when its manifest already exists the step
reuses it in seconds (unless ``--force``). Otherwise it converts into a local
staging folder, checks the quarantine against ``--max-bad-fraction``, and
publishes atomically (manifest last), so a failed or killed run publishes
nothing.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mindzoo.config import PreprocessConfig
from mindzoo.configkit import to_flat_dict
from mindzoo.errors import DataError
from mindzoo.runs.layout import DATASETS_EXPERIMENT, data_metrics, step_params
from mindzoo.steps.context import StepContext, step_command


def run(cfg: PreprocessConfig, ctx: StepContext) -> None:
    from mindzoo.data import hashing, prepare

    source = prepare.open_source(cfg, lambda: ctx.storage)
    key = hashing.content_hash(source.listing, prepare.settings_of(cfg, source))
    prefix = prepare.output_prefix(cfg, key)
    ctx.say(f"{source.uri} ({source.format}), content hash {key[:hashing.HASH_CHARS]} -> {prefix}")
    ctx.start_tracking(DATASETS_EXPERIMENT, f"preprocess-{source.name}",
                       params={**step_params("preprocess", to_flat_dict(cfg)), "dataset_hash": key},
                       tags={"content_hash": key, "dataset_uri": str(prefix)})
    published = None if cfg.force else ctx.storage.read_manifest(prefix)
    reused = published is not None
    if reused:
        ctx.say(f"reusing {prefix}: already converted (version {published.version} of {published.created}); "
                "pass --force to convert again")
        ctx.tracker.set_tags({"reused": "true"})
        ctx.tracker.log_metrics(data_metrics(_summary(published.meta)))
        report_md = _published_text(ctx, prefix, published, "report.md")
    else:
        published, report_md = _convert_and_publish(cfg, ctx, source, key, prefix)
    _outputs(ctx, prefix, published, report_md, reused)


def _convert_and_publish(cfg: PreprocessConfig, ctx: StepContext, source: Any, key: str,
                         prefix: Any) -> tuple[Any, str]:
    from mindzoo.data import convert, manifest, prepare, report

    plan = source.plan()
    counts = ", ".join(f"{len(items):,} {split}" for split, items in plan.splits.items())
    ctx.say(f"converting {counts} images of {len(plan.classes)} classes with {cfg.workers} workers")
    if plan.skipped:
        ctx.say(f"skipped {len(plan.skipped):,} system junk files ({plan.skipped[0]}, ...; listed in the report)")
    if "val" not in plan.splits:
        ctx.say("no val split (--train-only): train and evaluate will have no validation data")
    with prepare.staging(cfg, key) as out:
        conversion = convert.convert(plan, out, prepare.convert_settings(cfg), cfg.workers,
                                     progress=sys.stderr.isatty())
        info = manifest.build(name=source.name, key=key, source=source.uri, plan=plan, conversion=conversion,
                              settings=prepare.settings_of(cfg, source),
                              created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        data_report = report.build(info, conversion, cfg.max_bad_fraction, plan.skipped)
        paths = report.write(data_report, out)
        if cfg.report_dir:
            report.write(data_report, Path(cfg.report_dir).expanduser())
        _track(ctx, data_report, paths)
        _check_quarantine(data_report, cfg)
        _check_not_empty(info, cfg)
        paths["dataset"] = manifest.write(info, out)
        rate = data_report["conversion"]["images_per_second"] or 0
        ctx.say(f"converted {conversion.rows + len(conversion.bad):,} images in {conversion.seconds:.1f}s "
                f"({rate:,.0f} images/s, {conversion.workers} workers), {len(conversion.bad)} quarantined")
        published = ctx.storage.publish(out, prefix, meta=info, progress=sys.stderr.isatty())
        ctx.tracker.log_artifact(paths["dataset"])
        report_md = paths["md"].read_text()
    ctx.say(f"published {prefix} (version {published.version}, {len(published.files)} files)")
    return published, report_md


def _check_quarantine(data_report: dict[str, Any], cfg: PreprocessConfig) -> None:
    bad = data_report["quarantined"]
    if not bad or data_report["bad_fraction"] <= cfg.max_bad_fraction:
        return
    total = data_report["conversion"]["images"]
    where = f" (report in {cfg.report_dir})" if cfg.report_dir else ""
    raise DataError(f"{len(bad):,} of {total:,} images cannot be used ({data_report['bad_fraction']:.2%}, more than "
                    f"--max-bad-fraction {cfg.max_bad_fraction:.2%}); first: {bad[0]['file']}: {bad[0]['reason']}. "
                    f"Nothing was published{where}")


def _check_not_empty(info: dict[str, Any], cfg: PreprocessConfig) -> None:
    """A split the source has but whose every image was quarantined must not be published empty."""
    empty = [split for split, body in info["splits"].items() if body["images"] == 0]
    if empty:
        where = f" (report in {cfg.report_dir})" if cfg.report_dir else ""
        raise DataError(f"the {empty[0]} split has no usable images (all {info['splits'][empty[0]]['quarantined']:,} "
                        f"quarantined); nothing was published{where}")


def _track(ctx: StepContext, data_report: dict[str, Any], paths: dict[str, Path]) -> None:
    metrics = {"bad_fraction": data_report["bad_fraction"], "quarantined": len(data_report["quarantined"]),
               "num_classes": data_report["num_classes"],
               "images_per_second": data_report["conversion"]["images_per_second"] or 0.0}
    for split, body in data_report["splits"].items():
        metrics[f"{split}_images"] = body["images"]
        if body["imbalance"].get("max_over_min"):
            metrics[f"{split}_imbalance"] = body["imbalance"]["max_over_min"]
    ctx.tracker.log_metrics(data_metrics(metrics))
    for path in paths.values():
        ctx.tracker.log_artifact(path, "report")


def _summary(meta: dict[str, Any]) -> dict[str, Any]:
    from mindzoo.data import manifest

    return manifest.summary(meta)


def _published_text(ctx: StepContext, prefix: Any, published: Any, name: str) -> str:
    from mindzoo.storage import S3Uri

    entry = published.files.get(name)
    return ctx.storage.get_bytes(S3Uri(prefix.bucket, entry["key"])).decode() if entry else ""


def _outputs(ctx: StepContext, prefix: Any, published: Any, report_md: str, reused: bool) -> None:
    """KFP: the Dataset artifact is the published prefix; the report goes to the Markdown artifact's file."""
    meta = {**_summary(published.meta), "version": published.version, "reused": reused}
    ctx.kfp.point("dataset", str(prefix), meta)
    artifact = ctx.kfp.output_artifact("report")
    if artifact is not None:
        path = Path(artifact.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report_md)
        ctx.kfp.set_artifact("report", metadata={"content_hash": meta["content_hash"]})


command = step_command(
    "preprocess", PreprocessConfig, run,
    help="Convert a raw dataset (CIFAR-10 binaries, an ImageNet folder tree, or a flat folder plus a label "
         "file; local or s3://) to MindRecord shards in MinIO under a content-addressed prefix, with a data "
         "report. Reuses an earlier conversion of the same data and settings.",
)
