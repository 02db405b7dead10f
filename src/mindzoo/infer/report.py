"""Scores and files: top-1/top-5 in each recipe's own postprocess.py lines, per-image predictions, latency statistics."""

from __future__ import annotations

import csv
import json
import re
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

    def correct(self) -> tuple[int, int]:
        """Images whose label is the top-1 / among the top-5 classes."""
        return sum(r[2][0] == r[1] for r in self.rows), sum(r[1] in r[2] for r in self.rows)

    def accuracy(self) -> tuple[float, float]:
        if not self.rows:
            return 0.0, 0.0
        top1, top5 = self.correct()
        return top1 / len(self.rows), top5 / len(self.rows)

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


# Each recipe's 310 postprocess output (modelzoo_facts.md §1.5, §2.4, §3.5, §4.4, §5.5), by data config.
ACC_FORMATS = {
    "zfnet": "total_data", "sppnet": "total_data", "resnet50_bam": "total_data",
    "genet_res50": "total_data",  # §4.4: the script is gone; its last version printed this line
    "googlenet_cifar10": "allreduce_top1", "googlenet_imagenet": "allreduce_top1_top5",
    "inception_v4": "step_sum_accuracy",
}


def acc_lines(result: Result, data_config: str) -> list[str]:
    """The acc.log lines the recipe's own postprocess.py prints (the data config names the recipe)."""
    n = result.images
    top1, top5 = result.accuracy()
    correct1, correct5 = result.correct()
    kind = ACC_FORMATS[data_config]
    if kind == "total_data":  # SPPNet/ZFNet, ResNet50-BAM: argsort, top-1 and top-5 fractions
        return [f"Total data: {n}, top1 accuracy: {top1}, top5 accuracy: {top5}."]
    if kind == "step_sum_accuracy":  # InceptionV4: argmax only; accuracy in percent
        return [f"========step:{n}========", f"========sum:{correct1}========",
                f"========accuracy:{correct1 * 100.0 / n if n else 0.0}========"]
    lines = [f"after allreduce eval: top1_correct={correct1}, tot={n}, acc={100.0 * top1:.2f}%"]
    if kind == "allreduce_top1_top5":  # GoogLeNet on ImageNet adds the top-5 line
        lines.append(f"after allreduce eval: top5_correct={correct5}, tot={n}, acc={100.0 * top5:.2f}%")
    return lines


def parse_acc(text: str) -> dict[str, float]:
    """``{"images", "top1"[, "top5"]}`` (fractions) from acc.log text in any recipe's format."""
    found: dict[str, float] = {}
    if m := re.search(r"Total data: (\d+), top1 accuracy: ([0-9.e-]+), top5 accuracy: ([0-9.e-]+)\.", text):
        return {"images": float(m[1]), "top1": float(m[2]), "top5": float(m[3])}
    for k, correct, tot in re.findall(r"after allreduce eval: top([15])_correct=(\d+), tot=(\d+), acc=[0-9.]+%", text):
        found.update({"images": float(tot), f"top{k}": int(correct) / int(tot) if int(tot) else 0.0})
    if m := re.search(r"========step:(\d+)========\s+========sum:(\d+)========", text):
        found.update({"images": float(m[1]), "top1": int(m[2]) / int(m[1]) if int(m[1]) else 0.0})
    if "top1" not in found:
        raise ValueError(f"not an acc.log of any recipe: {text[:120]!r}")
    return found


def write(result: Result, folder: Path, extra: dict[str, Any], data_config: str) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"acc": folder / ACC_LOG, "predictions": folder / PREDICTIONS_CSV, "latency": folder / LATENCY_JSON}
    paths["acc"].write_text("".join(line + "\n" for line in acc_lines(result, data_config)))
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
