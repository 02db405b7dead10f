"""``dataset.json``: what a converted dataset holds, next to its shards.

It names the classes (label map in sorted class-folder order), counts images
per split and per class, lists every shard with its row count and size, and
records the content hash and the settings that produced it. The same document
is the ``meta`` of the published ``MANIFEST.json``, whose ``files`` give the
sha256 of every shard and index (taken once, while uploading), so a reader
that has only the manifest knows as much as one that fetched the folder.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from mindzoo.data import DATASET_FORMAT, DATASET_JSON, SCHEMA
from mindzoo.data.convert import Conversion
from mindzoo.data.sources import Plan
from mindzoo.errors import DataError


def build(*, name: str, key: str, source: str, plan: Plan, conversion: Conversion,
          settings: dict[str, Any], created: str) -> dict[str, Any]:
    splits = {}
    for split in plan.splits:
        shards = [s for s in conversion.shards if s.split == split]
        per_class = Counter(label for s in shards for label in s.labels)
        splits[split] = {
            "images": sum(s.rows for s in shards),
            "quarantined": sum(len(s.bad) for s in shards),
            "per_class": {plan.classes[i]: per_class.get(i, 0) for i in range(len(plan.classes))},
            "shards": [{"file": s.file, "index_file": f"{s.file}.db", "rows": s.rows, "bytes": s.bytes}
                       for s in shards if s.file],
            "image_size": image_size(shards),
        }
    return {
        "format": DATASET_FORMAT, "name": name, "content_hash": key, "source": source,
        "source_format": plan.format, "created": created, "schema": SCHEMA, "settings": settings,
        "classes": list(plan.classes), "label_map": {c: i for i, c in enumerate(plan.classes)},
        "num_classes": len(plan.classes), "splits": splits, "skipped_files": len(plan.skipped),
    }


CHANNELS = {"1": 1, "L": 1, "P": 1, "I": 1, "I;16": 1, "F": 1, "LA": 2, "RGB": 3, "YCbCr": 3, "LAB": 3,
            "HSV": 3, "RGBA": 4, "CMYK": 4}


def image_size(shards: list[Any]) -> dict[str, Any]:
    """Stored image sizes of a split: what train/evaluate/infer check a recipe's transforms against."""
    widths = [w for s in shards for w in s.widths]
    heights = [h for s in shards for h in s.heights]
    if not widths:
        return {}
    modes = sorted({m for s in shards for m in s.modes})
    return {"min_width": min(widths), "max_width": max(widths), "min_height": min(heights),
            "max_height": max(heights), "modes": modes,
            "channels": sorted({CHANNELS.get(m, 0) for m in modes} - {0})}


def summary(info: dict[str, Any]) -> dict[str, Any]:
    """Flat counts for KFP artifact metadata and MLflow metrics."""
    out: dict[str, Any] = {"content_hash": info["content_hash"], "num_classes": info["num_classes"],
                           "source_format": info["source_format"]}
    for split, body in info["splits"].items():
        out[f"{split}_images"] = body["images"]
        out[f"{split}_quarantined"] = body["quarantined"]
    return out


def write(info: dict[str, Any], folder: Path) -> Path:
    path = folder / DATASET_JSON
    path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return path


def load(folder: Path) -> dict[str, Any]:
    path = folder / DATASET_JSON
    if not path.is_file():
        raise DataError(f"{folder} is not a converted dataset (no {DATASET_JSON}); run `mindzoo preprocess` first")
    info = json.loads(path.read_text())
    if info.get("format") != DATASET_FORMAT:
        raise DataError(f"{path}: unknown dataset format {info.get('format')!r} (expected {DATASET_FORMAT})")
    return info


def shard_paths(folder: Path, info: dict[str, Any], split: str) -> list[Path]:
    if split not in info["splits"]:
        hint = " (it was published without a validation split, --train-only)" if split == "val" else ""
        raise DataError(f"dataset {info['name']} has no {split!r} split{hint} (it has {', '.join(info['splits'])})")
    paths = [folder / s["file"] for s in info["splits"][split]["shards"]]
    missing = [p for p in paths if not p.is_file() or not Path(f"{p}.db").is_file()]
    if missing:
        raise DataError(f"shard {missing[0]} (or its .db index) is missing; fetch the dataset again")
    if not paths:
        raise DataError(f"the {split} split of dataset {info['name']} has no images")
    return paths
