"""Benchmark: batch-1 latency of the `mindzoo infer` step vs a bare GraphCell loop, same MindIR and images.

One run: export a GoogLeNet (CIFAR head) MindIR at ``--size`` px, write the
digits as class folders, then

- step: ``mindzoo infer`` run in this process through the CLI entry point
  (runtime selection, per-image preprocessing, scoring, files); its
  ``latency.json`` gives the per-image model latency it measured;
- bare: ``GraphCell(x).asnumpy()`` over the same images, preprocessed once
  beforehand with the same transforms, timed the same way (perf_counter
  around the call).

Rounds alternate (step, bare, step, bare, ...) so machine load hits both; the
ratio uses the median of each round's p50. MindSpore is imported and the graph
compiled before timing. Latency is model time per image (as the 310 app's
"inference cost average time"); preprocessing is reported separately.

    .venv/bin/python benchmarks/infer.py --size 64 --images 300 --rounds 9
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _export(folder: Path, size: int) -> Path:
    sys.path.insert(0, str(ROOT / "tests" / "infer"))
    from conftest import export_folder  # the same helper the tests use

    return export_folder(folder, size=size)


def _step(model: Path, data: Path, out: Path, images: int) -> dict:
    from mindzoo.cli import cli

    cli.main(args=["infer", "--model", str(model), "--data", str(data), "--output-dir", str(out),
                   "--max-images", str(images), "--no-tracking-enabled", "--warmup", "5"],
             prog_name="mindzoo", standalone_mode=False)
    return json.loads((out / "latency.json").read_text())


def _bare(model: Path, tensors: list[np.ndarray]) -> dict:
    import mindspore as ms

    cell = ms.nn.GraphCell(ms.load(str(model / "googlenet.mindir")))
    for _ in range(5):
        cell(ms.Tensor(tensors[0])).asnumpy()
    times = []
    for x in tensors:
        t0 = time.perf_counter()
        cell(ms.Tensor(x)).asnumpy()
        times.append((time.perf_counter() - t0) * 1e3)
    t = np.asarray(times)
    return {"latency_p50_ms": float(np.percentile(t, 50)), "latency_p99_ms": float(np.percentile(t, 99)),
            "latency_mean_ms": float(t.mean())}


def _measure(work: Path, args: argparse.Namespace) -> tuple[list[float], list[float]]:
    """Alternating rounds in ``work``: the p50s of the step and of the bare loop."""
    from mindzoo.archs import get_data_config
    from mindzoo.config import DigitsConfig
    from mindzoo.datasets import digits
    from mindzoo.infer.inputs import open_images
    from mindzoo.infer.preprocess import Preprocessor

    model = _export(work / "export", args.size)
    digits.make(DigitsConfig(format="imagefolder", size=args.size), work / "digits")
    images = open_images(str(work / "digits"), split="val", label_file="", storage=lambda: None, cache_dir=None)
    prep = Preprocessor(get_data_config("googlenet_cifar10").at_size(args.size))
    tensors = [prep(data) for _, _, data in images.samples()][: args.images]
    print(f"googlenet MindIR [1, 3, {args.size}, {args.size}], {len(tensors)} images, {args.rounds} rounds")
    step_p50, bare_p50 = [], []
    for r in range(args.rounds):
        if r % 2:  # which goes first alternates too: neither always runs on a machine the other warmed
            bare = _bare(model, tensors)
            step = _step(model, work / "digits", work / f"out{r}", len(tensors))
        else:
            step = _step(model, work / "digits", work / f"out{r}", len(tensors))
            bare = _bare(model, tensors)
        step_p50.append(step["latency_p50_ms"])
        bare_p50.append(bare["latency_p50_ms"])
        print(f"round {r + 1}: step p50 {step['latency_p50_ms']:.3f} ms p99 {step['latency_p99_ms']:.3f} ms "
              f"(preprocess {step['preprocess_mean_ms']:.3f} ms, end-to-end {step['end_to_end_images_per_second']:.1f}"
              f" img/s) | bare p50 {bare['latency_p50_ms']:.3f} ms p99 {bare['latency_p99_ms']:.3f} ms")
    return step_p50, bare_p50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mindzoo-bench-infer-") as scratch:
        step_p50, bare_p50 = _measure(Path(scratch), args)
    ratio = statistics.median(step_p50) / statistics.median(bare_p50)
    print(f"ratio infer_vs_bare {ratio:.3f}")


if __name__ == "__main__":
    main()
