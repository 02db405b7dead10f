"""Scores and files: top-1/top-5 as the recipes' postprocess.py, per-image predictions, latency statistics."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mindzoo.infer import ACC_LOG, BAD_IMAGES, LATENCY_JSON, PREDICTIONS_CSV


@dataclass
class Result:
    classes: list[str]
    rows: list[tuple[str, int, list[int], list[float]]] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    model_ms: list[float] = field(default_factory=list)
    preprocess_ms: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    def add(self, file: str, label: int, logits: np.ndarray) -> None:
        scores = np.asarray(logits, np.float64).reshape(-1)
        top = np.argsort(-scores, kind="stable")[:5]
        self.rows.append((file, label, [int(i) for i in top], [float(scores[i]) for i in top]))

    @property
    def images(self) -> int:
        return len(self.rows)

    def accuracy(self) -> tuple[float, float]:
        if not self.rows:
            return 0.0, 0.0
        top1 = sum(r[2][0] == r[1] for r in self.rows) / len(self.rows)
        top5 = sum(r[1] in r[2] for r in self.rows) / len(self.rows)
        return top1, top5

    def latency(self) -> dict[str, float]:
        t = np.asarray(self.model_ms, np.float64)
        if not len(t):
            return {}
        p = np.asarray(self.preprocess_ms, np.float64)
        return {"latency_mean_ms": float(t.mean()), "latency_p50_ms": float(np.percentile(t, 50)),
                "latency_p90_ms": float(np.percentile(t, 90)), "latency_p99_ms": float(np.percentile(t, 99)),
                "images_per_second": float(1000.0 / t.mean()), "preprocess_mean_ms": float(p.mean()) if len(p) else 0.0,
                "end_to_end_images_per_second": float(len(t) / self.wall_s) if self.wall_s else 0.0}

    def metrics(self) -> dict[str, float]:
        top1, top5 = self.accuracy()
        return {"top1": top1, "top5": top5, "images": float(self.images), "bad_images": float(len(self.bad)),
                **self.latency()}


def acc_line(result: Result) -> str:
    """The recipes' postprocess.py line (modelzoo_facts.md §1.5)."""
    top1, top5 = result.accuracy()
    return f"Total data: {result.images}, top1 accuracy: {top1}, top5 accuracy: {top5}."


def write(result: Result, folder: Path, extra: dict[str, Any]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"acc": folder / ACC_LOG, "predictions": folder / PREDICTIONS_CSV, "latency": folder / LATENCY_JSON}
    paths["acc"].write_text(acc_line(result) + "\n")
    with open(paths["predictions"], "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["file", "label", *(f"top{k}_class" for k in range(1, 6)), *(f"top{k}_score" for k in range(1, 6))])
        for file, label, top, scores in result.rows:
            top, scores = top + [""] * (5 - len(top)), [f"{s:.6g}" for s in scores] + [""] * (5 - len(scores))
            out.writerow([file, label, *top, *scores])
    paths["latency"].write_text(json.dumps({**result.latency(), "images": result.images, **extra}, indent=2) + "\n")
    (folder / BAD_IMAGES).unlink(missing_ok=True)  # a reused --output-dir must not keep an earlier run's list
    if result.bad:
        paths["bad"] = folder / BAD_IMAGES
        paths["bad"].write_text("".join(f"{f}\t{why}\n" for f, why in result.bad))
    return paths
