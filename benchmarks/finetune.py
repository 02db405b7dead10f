"""Fine-tuning against training from scratch, measured on the bundled digits.

GoogLeNet (the demo's CPU settings: 16 px, batch 16, lr 0.003) is pretrained on the
digits 0-5, then trained for the same short run on the digits 6-9 — a task with other
classes, so the classifier head is re-initialised — once from the pretrained weights
(``--init-from``) and once from scratch, for each seed. Prints top-1 per seed, the
means, and last ``ratio finetune_vs_scratch VALUE`` (mean fine-tuned / mean scratch top-1).

Needs the local stack (`mindzoo stack up`); run with the runtime environment::

    GLOG_v=3 .venv/bin/python benchmarks/finetune.py --seeds 1,2,3
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from mindzoo.datasets import DIGITS_TRAINING

MINDZOO = str(Path(sys.executable).with_name("mindzoo"))


def mindzoo(*args: str) -> str:
    proc = subprocess.run([MINDZOO, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"mindzoo {' '.join(args[:2])} failed:\n{proc.stderr[-2000:]}")
    return proc.stderr


def digits_subset(classes: str, work: Path) -> str:
    """The digits ``classes`` as an image tree, preprocessed into the local stack; its s3:// prefix."""
    tree = work / f"digits-{classes.replace(',', '')}"
    mindzoo("datasets", "make-digits", "--format", "imagefolder", "--classes", classes, str(tree))
    out = mindzoo("preprocess", "--source", str(tree), "--no-tracking-enabled")
    return next(w for w in out.split() if w.startswith("s3://mindzoo/datasets/"))


def train(dataset: str, classes: int, epochs: int, seed: int, run_id: str, *extra: str) -> float:
    """Top-1 on the val split after a run of ``epochs`` epochs."""
    args = DIGITS_TRAINING.argv(epochs=False)
    out = mindzoo("train", "--dataset", dataset, *args, "--set", f"epochs={epochs},num_classes={classes},seed={seed}",
                  "--run-id", run_id, "--no-tracking-enabled", *extra)
    return float(re.findall(r"top1=([0-9.]+)", out)[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--pretrain-epochs", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1, help="length of both the fine-tuning and the scratch run")
    args = parser.parse_args()
    work, tag = Path(tempfile.mkdtemp(prefix="bench-finetune-")), uuid.uuid4().hex[:6]
    first, second = digits_subset("0,1,2,3,4,5", work), digits_subset("6,7,8,9", work)
    top1 = train(first, 6, args.pretrain_epochs, 0, f"bench-pre-{tag}")
    print(f"pretrained on digits 0-5 ({args.pretrain_epochs} epochs): top-1 {top1:.4f}")
    tuned, scratch = [], []
    for seed in (int(s) for s in args.seeds.split(",")):
        tuned.append(train(second, 4, args.epochs, seed, f"bench-ft-{tag}-{seed}", "--init-from",
                           f"s3://mindzoo/runs/bench-pre-{tag}/model"))
        scratch.append(train(second, 4, args.epochs, seed, f"bench-sc-{tag}-{seed}"))
        print(f"seed {seed}: digits 6-9 after {args.epochs} epoch(s): fine-tuned {tuned[-1]:.4f}, "
              f"from scratch {scratch[-1]:.4f}")
    mean_t, mean_s = sum(tuned) / len(tuned), sum(scratch) / len(scratch)
    print(f"mean over {len(tuned)} seeds: fine-tuned {mean_t:.4f}, from scratch {mean_s:.4f}")
    print(f"ratio finetune_vs_scratch {mean_t / mean_s:.3f}")


if __name__ == "__main__":
    main()
