"""Evaluation metrics and reports (framework-neutral; the backend only supplies logits).

Every image of the split is counted — unlike the recipes' ``drop_remainder=True``
eval pipelines (modelzoo_facts.md §0), which score 49,920 of ImageNet's 50,000.
The loss is plain softmax cross-entropy (no smoothing), the same for every recipe.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mindzoo.errors import ConfigError, DataError, MindzooError

__all__ = ["AccuracyGateFailed", "EvalResult", "Evaluator", "Scored", "check_gate", "evaluate", "kfp_confusion_matrix",
           "score_checkpoint", "write_report"]


@dataclass
class EvalResult:
    images: int
    loss: float
    top1: float
    top5: float
    confusion: np.ndarray  # rows: true class, columns: predicted class
    misclassified: list[dict[str, Any]] = field(default_factory=list)
    classes: tuple[str, ...] = ()

    @property
    def per_class(self) -> dict[str, float | None]:
        totals = self.confusion.sum(axis=1)
        return {name: (float(self.confusion[i, i] / totals[i]) if totals[i] else None)
                for i, name in enumerate(self.classes)}

    def summary(self) -> dict[str, float]:
        return {"top1": self.top1, "top5": self.top5, "loss": self.loss, "images": float(self.images)}


class Evaluator:
    """Accumulates loss, top-1/top-5 hits, the confusion matrix and misclassified examples."""

    def __init__(self, num_classes: int, classes: Sequence[str] = (), max_misclassified: int = 200) -> None:
        self.num_classes = num_classes
        self.classes = tuple(classes) or tuple(str(i) for i in range(num_classes))
        self.max_misclassified = max_misclassified
        self.confusion = np.zeros((num_classes, num_classes), np.int64)
        self.loss_sum = 0.0
        self.top1 = self.top5 = self.seen = 0
        self.misclassified: list[dict[str, Any]] = []

    def update(self, logits: np.ndarray, labels: np.ndarray) -> None:
        logits = logits.astype(np.float64)
        labels = labels.astype(np.int64).reshape(-1)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.loss_sum += float(-log_probs[np.arange(len(labels)), labels].sum())
        k = min(5, self.num_classes)
        topk = np.argsort(-logits, axis=1, kind="stable")[:, :k]
        predicted = topk[:, 0]
        self.top1 += int((predicted == labels).sum())
        self.top5 += int((topk == labels[:, None]).any(axis=1).sum())
        np.add.at(self.confusion, (labels, predicted), 1)
        for row in np.flatnonzero(predicted != labels):
            if len(self.misclassified) < self.max_misclassified:
                self.misclassified.append({
                    "index": self.seen + int(row), "label": int(labels[row]), "predicted": int(predicted[row]),
                    "label_name": self.classes[labels[row]], "predicted_name": self.classes[predicted[row]],
                    "confidence": float(np.exp(log_probs[row, predicted[row]]))})
        self.seen += len(labels)

    def result(self) -> EvalResult:
        n = max(self.seen, 1)
        return EvalResult(self.seen, self.loss_sum / n, self.top1 / n, self.top5 / n, self.confusion.copy(),
                          list(self.misclassified), self.classes)


def evaluate(batches: Iterable[tuple[np.ndarray, np.ndarray]], num_classes: int, classes: Sequence[str] = (),
             max_misclassified: int = 200) -> EvalResult:
    evaluator = Evaluator(num_classes, classes, max_misclassified)
    for logits, labels in batches:
        evaluator.update(logits, labels)
    return evaluator.result()


def kfp_confusion_matrix(result: EvalResult) -> dict[str, Any]:
    """KFP ``ClassificationMetrics`` metadata: ``{annotationSpecs: [{displayName}], rows: [{row: [...]}]}``."""
    return {"annotationSpecs": [{"displayName": name} for name in result.classes],
            "rows": [{"row": [int(v) for v in row]} for row in result.confusion]}


def write_report(result: EvalResult, folder: Path, title: str, extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """metrics.json, confusion_matrix.json/.png, per_class.json, misclassified.json and report.md/.html."""
    from mindzoo.engine import plots

    folder.mkdir(parents=True, exist_ok=True)
    paths = {key: folder / name for key, name in _REPORT_FILES.items()}
    paths["metrics"].write_text(json.dumps({**result.summary(), **(extra or {})}, indent=2, sort_keys=True))
    paths["confusion_json"].write_text(json.dumps(
        {"classes": list(result.classes), "matrix": result.confusion.tolist(), "kfp": kfp_confusion_matrix(result)},
        indent=2))
    plots.confusion_matrix(result.confusion, result.classes, paths["confusion_png"], title)
    paths["per_class"].write_text(json.dumps(result.per_class, indent=2))
    paths["misclassified"].write_text(json.dumps(result.misclassified, indent=2))
    markdown = _markdown(result, title, extra or {})
    paths["report_md"].write_text(markdown)
    paths["report_html"].write_text(_html(markdown))
    return paths


_REPORT_FILES = {"metrics": "metrics.json", "confusion_json": "confusion_matrix.json",
                 "confusion_png": "confusion_matrix.png", "per_class": "per_class.json",
                 "misclassified": "misclassified.json", "report_md": "report.md", "report_html": "report.html"}


def _markdown(result: EvalResult, title: str, extra: dict[str, Any]) -> str:
    lines = [f"# {title}", "", f"{result.images:,} images: top-1 **{result.top1:.4f}**, top-5 **{result.top5:.4f}**, "
             f"loss {result.loss:.4f}", ""]
    lines += [f"- {k}: {v}" for k, v in sorted(extra.items())] + ["", "## Per-class accuracy", "",
                                                                  "| class | images | accuracy |", "|---|---:|---:|"]
    totals = result.confusion.sum(axis=1)
    for i, (name, acc) in enumerate(result.per_class.items()):
        lines.append(f"| {name} | {int(totals[i])} | {'-' if acc is None else f'{acc:.4f}'} |")
    lines += ["", f"## Misclassified ({len(result.misclassified)} listed, "
                  f"{result.images - int(np.trace(result.confusion))} in all)", "",
              "| index | label | predicted | confidence |", "|---:|---|---|---:|"]
    lines += [f"| {m['index']} | {m['label_name']} | {m['predicted_name']} | {m['confidence']:.3f} |"
              for m in result.misclassified]
    return "\n".join(lines) + "\n"


def _html(markdown: str) -> str:
    """A minimal, dependency-free rendering: headings and tables become HTML, the rest stays text."""
    import html

    out, in_table = ["<!doctype html><meta charset='utf-8'><body style='font-family:sans-serif'>"], False
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-:"):
                continue
            out.append(("<table border=1 cellspacing=0 cellpadding=3>" if not in_table else "")
                       + "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
            in_table = True
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
        elif line.strip():
            out.append(f"<p>{html.escape(line).replace('**', '')}</p>")
    return "\n".join(out + (["</table>"] if in_table else []) + ["</body>"])


class AccuracyGateFailed(MindzooError):
    """The model scored below ``--min-top1``/``--min-top5``."""

    exit_code = 3


@dataclass
class Scored:
    """What ``mindzoo evaluate`` measured, and of what."""

    result: EvalResult
    model: str
    identity: dict[str, Any]
    dataset: dict[str, Any]
    input_size: int
    engine: str = "mindspore"


def score_checkpoint(cfg: Any, storage: Any, work: Path) -> Scored:
    """Load ``cfg.checkpoint`` into its model and score it on ``cfg.split`` of ``cfg.dataset``."""
    from mindzoo.archs import get_data_config
    from mindzoo.data import fit
    from mindzoo.engine import checkpoint as ckpt
    from mindzoo.engine import create_backend
    from mindzoo.engine.plan import apply_data_overrides, load_dataset

    folder = ckpt.local_checkpoint(cfg.checkpoint, storage, work)
    identity = ckpt.read_json(folder / ckpt.IDENTITY)
    model = _model_of(cfg, identity)
    local, info = load_dataset(cfg.dataset, storage, cfg.cache_dir)
    num_classes = int(identity.get("num_classes") or info["num_classes"])
    ckpt.check_identity(identity, model=model, num_classes=None, where=cfg.checkpoint)
    if num_classes != int(info["num_classes"]):
        raise DataError(f"checkpoint {cfg.checkpoint} has {num_classes} classes but dataset "
                        f"{info.get('name', cfg.dataset)} has {info['num_classes']}")
    base = get_data_config(identity.get("data_config") or model)
    size = cfg.input_size or int(identity.get("input_size") or base.input_size)
    data_cfg = apply_data_overrides(base if size == base.input_size else base.at_size(size),
                                    identity.get("data_overrides") or {}, "evaluate.checkpoint.data")
    fit.check(info, data_cfg, eval_splits=(cfg.split,), key="evaluate.checkpoint.data")
    engine = _engine_of(identity, cfg.device)
    backend = create_backend(engine, device=cfg.device, mode=cfg.mode, threads=cfg.threads,
                             data_workers=cfg.data_workers)
    backend.start()
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in identity.get("model_kwargs", {}).items()}
    try:
        backend.build_model(model, num_classes=num_classes, input_size=size, **kwargs)
    except ConfigError as err:  # the builder names its own keys (model.input_size): ours are evaluate.*
        raise ConfigError(f"evaluate.{err.key.removeprefix('model.')}", err.problem) from None
    backend.load(folder, optimizer=False, where=cfg.checkpoint)
    classes = info.get("classes") or identity.get("classes") or ()
    result = evaluate(backend.predict(local, data_cfg, cfg.split, cfg.batch_size), num_classes, classes,
                      cfg.max_misclassified)
    if result.images != int(info["splits"][cfg.split]["images"]):
        raise DataError(f"scored {result.images} images of the {cfg.split} split, which holds "
                        f"{info['splits'][cfg.split]['images']}")
    names = backend.file_ids(local, cfg.split)
    for entry in result.misclassified:
        entry["file"] = names[entry["index"]]
    return Scored(result, model, identity, info, size, engine)


def _engine_of(identity: dict[str, Any], device: str) -> str:
    """The engine that trained the checkpoint scores it. MindSpore reads a torch checkpoint's safetensors too,
    so it scores one where torch is missing or cannot run (Ascend)."""
    import importlib.util

    from mindzoo.engine import BACKENDS

    framework = identity.get("framework") or "mindspore"
    try:
        has_torch = importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a broken or blocked torch counts as none
        has_torch = False
    if framework not in BACKENDS or (framework == "torch" and (device == "ascend" or not has_torch)):
        return "mindspore"
    return framework


def _model_of(cfg: Any, identity: dict[str, Any]) -> str:
    from mindzoo.engine.checkpoint import CheckpointMismatch
    from mindzoo.registry import list_models

    recorded = identity.get("model")
    model = cfg.model or recorded
    if not model:
        raise ConfigError("evaluate.model", f"{cfg.checkpoint} records no model: pass --model")
    if model not in list_models():
        raise ConfigError("evaluate.model", f"unknown model {model!r}; available: {', '.join(list_models())}")
    if recorded and cfg.model and recorded != cfg.model:
        raise CheckpointMismatch(f"{cfg.checkpoint} is a checkpoint of model {recorded!r}, not {cfg.model!r}")
    return model


def check_gate(result: EvalResult, min_top1: float, min_top5: float) -> None:
    failed = [f"top-{k} {got:.4f} < {want}" for k, got, want in ((1, result.top1, min_top1), (5, result.top5, min_top5))
              if got < want]
    if failed:
        raise AccuracyGateFailed(f"accuracy gate failed: {', '.join(failed)} on {result.images} images")
