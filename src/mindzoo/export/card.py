"""The model card (README.md) and the machine-readable description published with an export."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from mindzoo.archs import DataConfig


def preprocessing(data_cfg: DataConfig, shape: tuple[int, ...]) -> dict[str, Any]:
    """What `mindzoo infer` (or any client) must do to an image before the MindIR sees it (the 310 app's way)."""
    e = data_cfg.infer
    scale = 255.0 if data_cfg.normalize == "uint8" else 1.0
    steps = ["Decode (RGB)",
             f"Resize {'short side to ' + str(e.resize_size) if e.resize_mode == 'short_side' else f'to {e.resize_size}x{e.resize_size}'}"
             f" ({data_cfg.interpolation})",
             f"CenterCrop {e.crop_size}"]
    steps += (["Rescale 1/255"] if data_cfg.normalize == "rescale" else [])
    steps += [f"Normalize mean {[round(m * scale, 4) for m in data_cfg.mean]} std {[round(s * scale, 4) for s in data_cfg.std]}",
              "HWC2CHW", f"batch to {list(shape)} float32"]
    return {"data_config": dataclasses.asdict(data_cfg), "input_shape": list(shape), "layout": "NCHW",
            "dtype": "float32", "steps": steps}


def lineage(point: Any) -> dict[str, str]:
    """Where the export comes from: data, training run, recipe, and the code and image this step ran in."""
    from mindzoo.runs.layout import ENV_GIT_SHA, ENV_IMAGE, image_digest

    ident, run = point.identity, point.run
    out = {"dataset_hash": ident.get("dataset_hash", ""), "train_run_id": ident.get("run_id", ""),
           "train_mlflow_run_id": run.get("mlflow_run_id") or "", "recipe": ident.get("recipe", ""),
           "git_sha": os.environ.get(ENV_GIT_SHA, ""), "image": os.environ.get(ENV_IMAGE, ""),
           "image_digest": image_digest()}
    start = ident.get("init_from") or {}  # the weights training started from (--init-from), or an import's source
    if start:
        out.update(init_from=start.get("uri", ""), init_from_sha256=start.get("sha256", ""))
    return {k: str(v) for k, v in out.items()}


def markdown(*, title: str, point: Any, source: str, formats: list[dict[str, Any]], prep: dict[str, Any],
             parity: float, tolerance: float, metrics: dict[str, float], lin: dict[str, str]) -> str:
    lines = [f"# {title}", "",
             f"`{point.model}` ({point.num_classes} classes) exported from `{source}` "
             f"at {point.input_size}x{point.input_size} px.", "", "## Files", "",
             "| format | file | bytes | sha256 / reason |", "|---|---|---:|---|"]
    for f in formats:
        if f["made"]:
            lines.append(f"| {f['format']} | {f['file']} | {f['size_bytes']:,} | `{f['sha256'][:16]}…` |")
        else:
            lines.append(f"| {f['format']} | not made | - | {f['reason']} |")
    lines += ["", f"Parity: max |logit(MindIR) − logit(checkpoint)| = {parity:.3g} on a fixed batch "
                  f"(tolerance {tolerance:g}).", "", "## Preprocessing", ""]
    lines += [f"{i}. {step}" for i, step in enumerate(prep["steps"], start=1)]
    lines += ["", "## Evaluation", ""]
    lines += [f"- {k}: {v:.4f}" for k, v in sorted(metrics.items())] or ["- none recorded with the checkpoint"]
    lines += ["", "## Lineage", ""] + [f"- {k}: {v or '-'}" for k, v in lin.items()]
    lines += ["", "## Use", "", "```", f"mindzoo infer --model <this prefix> --data <images>", "```", ""]
    return "\n".join(lines)
