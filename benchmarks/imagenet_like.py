"""Generated ImageNet-like JPEGs for the benchmarks (cached; never part of the package).

Photos compress worse than flat synthetic images, so each image is smooth
colour gradients plus pixel noise, at ImageNet's common sizes (500x375,
500x333, 375x500, ...) and JPEG quality 90. That gives files of about
110 KB on average, like ImageNet's train set, and realistic decode cost.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import shutil
import sys
from pathlib import Path

SIZES = ((500, 375), (500, 333), (375, 500), (333, 500), (500, 500), (640, 480), (500, 400), (400, 300))
NOISE = 23.0
QUALITY = 90
CLASSES = 10
VERSION = 1  # bump when the generator changes, so caches are rebuilt


def default_root(count: int) -> Path:
    from mindzoo.paths import cache_dir

    return cache_dir() / "bench" / f"imagenet-like-v{VERSION}-{count}"


def _one(index: int) -> tuple[str, bytes]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(index)
    w, h = SIZES[int(rng.integers(len(SIZES)))]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    planes = [128 + 100 * np.sin(x / rng.uniform(15, 90) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(15, 90) + c)
              for c in range(3)]
    pixels = np.stack(planes, -1) + rng.normal(0, NOISE, (h, w, 3))
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=QUALITY)
    return f"train/n{index % CLASSES:08d}/img_{index:06d}.JPEG", out.getvalue()


def make(count: int, root: Path | None = None) -> Path:
    """``root/train/<class>/*.JPEG`` with ``count`` images; reused when already complete."""
    root = root or default_root(count)
    if (root / ".complete").exists():
        return root
    staging = root.with_name(root.name + f".tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    print(f"generating {count} ImageNet-like JPEGs in {root} (cached for later runs)...", file=sys.stderr)
    with mp.get_context("fork").Pool() as pool:
        for rel, data in pool.imap_unordered(_one, range(count), chunksize=16):
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    (staging / ".complete").touch()
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)
    return root


def files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "train").rglob("*.JPEG"))


if __name__ == "__main__":
    folder = make(int(sys.argv[1]) if len(sys.argv) > 1 else 600)
    sizes = [p.stat().st_size for p in files(folder)]
    print(f"{folder}: {len(sizes)} images, mean {sum(sizes) / len(sizes) / 1e3:.0f} KB")
