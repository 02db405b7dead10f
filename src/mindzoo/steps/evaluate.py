"""``mindzoo evaluate``: a checkpoint + a converted dataset → loss, top-1/top-5, per-class accuracy, confusion matrix.

Orchestration only; the work lives in :mod:`mindzoo.engine.evaluate`. Every
image of the split counts. Results go to MLflow (metrics, report files), to the
KFP ``metrics`` / ``confusion`` / ``report`` outputs, and optionally to a local
folder; ``--min-top1``/``--min-top5`` then gate the pipeline (non-zero exit).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mindzoo.config import EvaluateConfig
from mindzoo.steps.context import StepContext, step_command


def run(cfg: EvaluateConfig, ctx: StepContext) -> None:
    from mindzoo.engine.evaluate import check_gate, kfp_confusion_matrix, score_checkpoint, write_report

    with tempfile.TemporaryDirectory(prefix="mindzoo-evaluate-") as tmp:
        work = Path(tmp)
        scored = score_checkpoint(cfg, ctx.storage, work)
        result, identity = scored.result, scored.identity
        ctx.say(f"{scored.model} on {result.images} {cfg.split} images: top-1 {result.top1:.4f}, "
                f"top-5 {result.top5:.4f}, loss {result.loss:.4f}")
        _track(cfg, ctx, scored)
        extra = {"model": scored.model, "checkpoint": cfg.checkpoint, "dataset": cfg.dataset, "split": cfg.split,
                 "input_size": scored.input_size}
        # Not in `work`: MLflow may still hold the files for a retry when the step ends.
        folder = Path(cfg.report_dir).expanduser() if cfg.report_dir else ctx.scratch("mindzoo-evaluate-report-")
        paths = write_report(result, folder, f"{scored.model}: {cfg.split} split", extra)
        for path in paths.values():
            ctx.tracker.log_artifact(path, "evaluation")
        ctx.kfp.set_artifact("metrics", metadata={"top1": result.top1, "top5": result.top5, "loss": result.loss})
        ctx.kfp.set_artifact("confusion", metadata={"confusionMatrix": kfp_confusion_matrix(result)})
        _report_output(ctx, paths["report_html"], identity)
        check_gate(result, cfg.min_top1, cfg.min_top5)


def _track(cfg: EvaluateConfig, ctx: StepContext, scored: Any) -> None:
    from mindzoo.configkit import to_flat_dict

    result, identity = scored.result, scored.identity
    dataset_hash = str(scored.dataset.get("content_hash", ""))
    tags = {"checkpoint": cfg.checkpoint, "dataset_uri": cfg.dataset, "model": scored.model}
    if identity.get("run_id"):
        tags["mindzoo.run_id"] = identity["run_id"]
    params = {**{f"evaluate.{k}": v for k, v in to_flat_dict(cfg).items()}, "model": scored.model,
              "engine": scored.engine, "device": cfg.device, "dataset_hash": dataset_hash,
              "input_size": scored.input_size, "num_classes": len(result.classes)}
    run_name = f"evaluate-{identity.get('run_id') or scored.model}"
    from mindzoo.runs.layout import experiment_name

    ctx.start_tracking(experiment_name(scored.model, dataset_hash), run_name, params=params, tags=tags)
    metrics = {"eval/top1": result.top1, "eval/top5": result.top5, "eval/loss": result.loss,
               "eval/images": result.images}
    metrics.update({f"eval/class_acc/{name}": acc for name, acc in result.per_class.items() if acc is not None})
    ctx.tracker.log_metrics(metrics)


def _report_output(ctx: StepContext, html: Path, identity: dict[str, Any]) -> None:
    artifact = ctx.kfp.output_artifact("report")
    if artifact is None:
        return
    target = Path(artifact.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html.read_text())
    ctx.kfp.set_artifact("report", metadata={"model": identity.get("model", "")})


command = step_command(
    "evaluate", EvaluateConfig, run,
    help="Score a checkpoint (train's model output, a published checkpoint, a local folder or a .ckpt file) on "
         "a whole split of a dataset published by `mindzoo preprocess`: loss, top-1, top-5, per-class accuracy, "
         "confusion matrix and misclassified examples, logged to MLflow. --min-top1/--min-top5 fail the step "
         "when the model scores lower.",
)
