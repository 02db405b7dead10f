"""Benchmark: `mindzoo preprocess` conversion vs MindSpore's ImageNetToMR vs a plain file copy.

All three handle the same ImageNet-style folder of generated JPEGs (about 110 KB
each, see imagenet_like.py) in one run:

- mindzoo: scan + check (verify=header, the default) + parallel sharded
  MindRecord write + dataset.json (``mindzoo.data.prepare.convert_local``),
  i.e. the step without the upload; also shown with verify=decode (every image
  decoded), which the ratio lines do not use;
- ImageNetToMR: ``mindspore.mindrecord.ImageNetToMR(map, train/, dest,
  partition_number=workers).transform()`` — same number of writer processes;
- copy: ``shutil.copyfile`` of every image, one after the other.

Fairness: the images are read once before timing, so every contender reads
from the page cache; every output goes to a fresh folder on the same local
disk; nothing is uploaded. MindSpore is imported before any timing. Rounds are
interleaved (mindzoo, ImageNetToMR, copy, mindzoo, ...) so load from other
processes hits all contenders alike; the ratios use each one's median round
(the fastest round is printed too, but on a shared 2-core machine it favours
the single-threaded copy, which needs only one idle core to reach its best).

    .venv/bin/python benchmarks/preprocess.py --images 600
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import imagenet_like  # noqa: E402 - the sibling helper, not a package


def run_mindzoo(root: Path, out: Path, workers: int, verify: str) -> None:
    from mindzoo.config import PreprocessConfig
    from mindzoo.data.prepare import convert_local

    convert_local(PreprocessConfig(source=str(root), workers=workers, verify=verify), out)


def run_imagenettomr(root: Path, out: Path, workers: int) -> None:
    from mindspore.mindrecord import ImageNetToMR

    out.mkdir(parents=True)
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    (out / "map.txt").write_text("".join(f"{name} {i}\n" for i, name in enumerate(classes)))
    ImageNetToMR(str(out / "map.txt"), str(root / "train"), str(out / "imagenet.mindrecord"), workers).transform()


def run_copy(files: list[Path], out: Path) -> None:
    out.mkdir(parents=True)
    for i, path in enumerate(files):
        shutil.copyfile(path, out / f"{i:07d}{path.suffix}")


def measure(contenders: dict[str, Callable[[Path], None]], scratch: Path, repeat: int) -> dict[str, list[float]]:
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(repeat):
        for name, fn in contenders.items():
            out = scratch / f"{name}-{round_}"
            started = time.perf_counter()
            fn(out)
            seconds[name].append(time.perf_counter() - started)
            shutil.rmtree(out, ignore_errors=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3000, help="generated JPEGs to convert (cached)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="processes for both")
    parser.add_argument("--repeat", type=int, default=7, help="interleaved rounds; the median is used")
    parser.add_argument("--scratch", type=Path, default=None, help="local output folder (default: a temp dir)")
    args = parser.parse_args()

    import mindspore.mindrecord  # noqa: F401 - import cost is paid before timing, by everyone

    root = imagenet_like.make(args.images)
    files = imagenet_like.files(root)
    total = sum(p.stat().st_size for p in files)  # and read every image once: all contenders hit the page cache
    for path in files:
        path.read_bytes()
    scratch = Path(tempfile.mkdtemp(prefix="mindzoo-bench-", dir=args.scratch))
    try:
        seconds = measure({
            "mindzoo": lambda out: run_mindzoo(root, out, args.workers, "header"),
            "mindzoo_decode": lambda out: run_mindzoo(root, out, args.workers, "decode"),
            "imagenettomr": lambda out: run_imagenettomr(root, out, args.workers),
            "copy": lambda out: run_copy(files, out),
        }, scratch, args.repeat)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    rate = {name: len(files) / statistics.median(s) for name, s in seconds.items()}
    best = {name: len(files) / min(s) for name, s in seconds.items()}
    print(f"{len(files)} JPEGs, mean {total / len(files) / 1e3:.0f} KB, {args.workers} workers, "
          f"median of {args.repeat} interleaved rounds, local output on {scratch.parent}")
    labels = {"mindzoo": "mindzoo preprocess (verify=header, default)",
              "mindzoo_decode": "mindzoo preprocess (verify=decode)",
              "imagenettomr": f"ImageNetToMR (partition_number={args.workers})", "copy": "plain file copy"}
    for name, label in labels.items():
        runs = ", ".join(f"{s:.2f}" for s in seconds[name])
        print(f"{label:44s} {rate[name]:6.0f} img/s (best {best[name]:.0f}; seconds: {runs})")
    print(f"ratio preprocess_vs_imagenettomr {rate['mindzoo'] / rate['imagenettomr']:.2f}")
    print(f"ratio preprocess_vs_copy {rate['mindzoo'] / rate['copy']:.2f}")


if __name__ == "__main__":
    main()
