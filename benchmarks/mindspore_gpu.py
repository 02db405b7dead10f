"""ResNet50-BAM training throughput of the MindSpore engine on one GPU: ``torch_gpu.py``'s counterpart.

The same measurement as ``benchmarks/torch_gpu.py`` with the engine the recipe itself
uses, so the two engines can be compared on one card: the recipe's network, Momentum
with its no-decay groups, label smoothing, fixed loss scale 1024 and AMP level (O3 on
GPU) through mindzoo's own MindSpore train step
(:func:`mindzoo.engine.mindspore.steps.build_train_step`), in graph mode, batch 128 at
224 px, on synthetic images already on the device. The recipe's README reports
185 ms/step on one V100 with MindSpore — 692 img/s. The first ``--warmup`` steps
(graph compilation, cuDNN autotuning) are not timed.

    .venv/bin/python benchmarks/mindspore_gpu.py        # on a machine with an NVIDIA GPU
    .venv/bin/python benchmarks/torch_gpu.py            # the torch engine, same settings

The last line is ``ratio mindspore_gpu_vs_recipe VALUE`` (measured img/s / 692). MindSpore
2.10's GPU plugin is built for CUDA 11 (11.6+ runtime and cuDNN 8): without a GPU, or
without those libraries, it says what is missing and exits 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_step import RECIPE_IMG_PER_S, parser  # noqa: E402 - the sibling helper


def parse_args() -> argparse.Namespace:
    parse = parser(__doc__.split("\n\n")[0], "untimed steps first (graph build, autotuning)")
    parse.add_argument("--mode", choices=("graph", "pynative"), default="graph")
    parse.add_argument("--device", choices=("gpu", "cpu"), default="gpu",
                       help="cpu: only checks that the script runs (tiny sizes); no ratio")
    return parse.parse_args()


def gpu_missing(device: str) -> str | None:
    """Why MindSpore cannot train on a GPU here, or None."""
    import mindspore as ms

    if device == "cpu":
        return None
    try:
        ms.set_device("GPU", 0)
        ms.Tensor([1.0]) + 1  # noqa: B018 - the first op loads the plugin and its CUDA libraries
    except (RuntimeError, ValueError) as err:
        return str(err).strip().splitlines()[0][:300]
    return None


def build(batch: int, size: int, mode: str, device: str):  # noqa: ANN201 - (train step, images, labels)
    import mindspore as ms
    import numpy as np

    from mindzoo.engine.loss import loss_scale_plan
    from mindzoo.engine.mindspore import runtime, steps
    from mindzoo.engine.plan import amp_settings
    from mindzoo.engine.schedules import lr_array
    from mindzoo.recipes import load_recipe
    from mindzoo.registry import create_model

    recipe = load_recipe("resnet50_bam", {"batch_size": str(batch)})
    runtime.setup(device, mode, 0)
    runtime.seed_everything(recipe.seed)
    net = create_model("resnet50_bam", framework="mindspore", num_classes=recipe.num_classes, input_size=size)
    lr = lr_array(recipe.schedule, epochs=recipe.epochs, steps_per_epoch=1000)
    plan = loss_scale_plan(recipe.loss_scale)
    if plan.kind == "dynamic":
        raise SystemExit("the benchmark times the recipe's fixed loss scale; this recipe's is dynamic")
    optimizer = steps.build_optimizer(net, recipe.optim, lr, plan.value)
    level, keep_bn = amp_settings(recipe, device)
    step = steps.build_train_step(net, steps.build_loss(recipe.loss, recipe.num_classes), optimizer, plan,
                                  amp_level=level, keep_batchnorm_fp32=keep_bn, world_size=1)
    rng = np.random.default_rng(0)
    images = ms.Tensor(rng.standard_normal((batch, 3, size, size), dtype=np.float32))
    labels = ms.Tensor(rng.integers(0, recipe.num_classes, batch).astype(np.int32))
    print(f"resnet50_bam: batch {batch} at {size} px, AMP {level} (BatchNorm fp32: {keep_bn}), "
          f"loss scale {plan.kind} {plan.value:g}, {mode} mode, MindSpore {ms.__version__}", flush=True)
    return step, images, labels


def _loss(out) -> float:  # noqa: ANN001
    """The loss of a step's output (a loss-scaled step returns (loss, overflow, scale)); waits for the device."""
    return float((out[0] if isinstance(out, tuple) else out).asnumpy())


def measure(step, images, labels, steps_timed: int, warmup: int) -> float:  # noqa: ANN001
    for _ in range(warmup):
        out = step(images, labels)
    _loss(out)
    started = time.perf_counter()
    for _ in range(steps_timed):
        out = step(images, labels)
    loss = _loss(out)  # the device queue drains here, as at the trainer's logging interval
    seconds = time.perf_counter() - started
    print(f"last loss {loss:.4f}; {seconds / steps_timed * 1000:.1f} ms/step", flush=True)
    return images.shape[0] * steps_timed / seconds


def main() -> int:
    args = parse_args()
    missing = gpu_missing(args.device)
    if missing:
        print(f"no usable GPU for MindSpore here ({missing}); this benchmark needs an NVIDIA GPU with the CUDA 11 "
              "runtime and cuDNN 8 MindSpore 2.10's GPU plugin loads. Nothing was measured.", file=sys.stderr)
        return 2
    step, images, labels = build(args.batch_size, args.input_size, args.mode, args.device)
    rate = measure(step, images, labels, args.steps, args.warmup)
    if args.device == "cpu":
        print(f"MindSpore engine on CPU: {rate:.1f} img/s (a check that the script runs; no ratio off a GPU)")
        return 0
    print(f"MindSpore engine: {rate:.1f} img/s; recipe (MindSpore, one V100): {RECIPE_IMG_PER_S:.0f} img/s")
    print(f"ratio mindspore_gpu_vs_recipe {rate / RECIPE_IMG_PER_S:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
