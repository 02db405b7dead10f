"""Data-parallel scaling of `mindzoo train` on one machine: 2 workers x 1 thread against 1 worker x 1 thread.

Both runs are the real CLI with the same recipe, per-worker batch and input
size, each worker on one core; the two-worker run is MindSpore's dynamic
cluster (a scheduler plus two workers, each pinned to its own core by the
launcher, gradients all-reduced every step). Throughput is the engine's
``perf/img_per_s`` (global images per second over steady-state steps; the
compiling first step is excluded), read back from the run's final state in
MinIO, averaged over the epochs after the first.

Needs the local stack (`mindzoo stack up`); run with the runtime environment::

    GLOG_v=3 .venv/bin/python benchmarks/scaling.py

The last line is ``ratio scaling_2_workers VALUE`` (target: >= 1.7).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np

MINDZOO = str(Path(sys.executable).with_name("mindzoo"))


def run(dataset: str, workers: int, args: argparse.Namespace) -> float:
    """Global img/s of one training run (mean over epochs 2..N)."""
    from mindzoo.storage import S3Uri, Storage

    run_id = f"bench-scaling-{workers}w-{uuid.uuid4().hex[:6]}"
    command = [MINDZOO, "train", "--dataset", dataset, "--recipe", args.recipe, "--input-size", str(args.input_size),
               "--set", f"epochs={args.epochs},batch_size={args.batch_size}", "--steps-per-epoch",
               str(args.steps), "--workers", str(workers), "--threads", "1", "--data-workers", "1",
               "--no-final-eval", "--no-tracking-enabled", "--output", "s3://mindzoo/bench", "--run-id", run_id]
    # One worker gets one core, as each of two workers does (the launcher pins them): "x 1 thread" alone
    # would still let MindSpore's kernels spread over every core.
    pin = (lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})) if workers == 1 else None
    proc = subprocess.run(command, capture_output=True, text=True, preexec_fn=pin)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stderr[-3000:]}")
    store = Storage.connect()
    manifest = store.read_manifest(S3Uri.parse(f"s3://mindzoo/bench/{run_id}/model"))
    state = json.loads(store.get_bytes(S3Uri("mindzoo", manifest.files["state.json"]["key"])))
    rates = [h["perf/img_per_s"] for h in state["history"][1:]]
    print(f"{workers} worker(s) x 1 thread: {np.mean(rates):.1f} img/s (epochs 2..{args.epochs}: "
          f"{', '.join(f'{r:.1f}' for r in rates)})", flush=True)
    return float(np.mean(rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="", help="converted dataset (default: digits into the local stack)")
    parser.add_argument("--recipe", default="googlenet_cifar10")
    # Enough work per step that the all-reduce of GoogLeNet's 22 MB of gradients (about 0.13 s over
    # MindSpore's CPU collectives on loopback) is small next to it, as on real inputs.
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64, help="per worker")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=12, help="steps per epoch")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from train_overhead import digits_dataset

    dataset = args.dataset or digits_dataset()
    one, two = [], []
    for _ in range(args.rounds):
        one.append(run(dataset, 1, args))
        two.append(run(dataset, 2, args))
    print(f"{args.recipe} {args.input_size}px, batch {args.batch_size} per worker, {args.steps} steps/epoch")
    print(f"ratio scaling_2_workers {np.median(two) / np.median(one):.3f}")


if __name__ == "__main__":
    main()
