"""ResNet50-BAM training throughput of the torch engine on one GPU, against the recipe's published V100 number.

The recipe (modelzoo_facts.md §2; ModelZoo ``research/cv/resnet50_bam``) reports
185 ms/step at batch 128 on one V100 with MindSpore's GPU backend — 692 img/s.
This trains the same network with the torch engine's own train step
(:class:`mindzoo.engine.torch.steps.TrainStep`): the recipe's Momentum with its
no-decay groups, label smoothing 0.1 (off = eps/(C-1)), fixed loss scale 1024
and AMP O3 as fp16 autocast, batch 128 at 224 px, channels-last — on synthetic
images already on the GPU, so it measures the training step, not the input
pipeline (``benchmarks/input_pipeline.py`` measures that). The first
``--warmup`` steps (cuDNN autotuning) are not timed.

    .venv/bin/python benchmarks/torch_gpu.py            # on a machine with an NVIDIA GPU

The last line is ``ratio torch_gpu_vs_recipe VALUE`` (measured img/s / 692).
Without a GPU it says so and exits 2. ``--mindspore-gpu`` also tries
MindSpore's own GPU backend (built for CUDA 11) in a subprocess and reports
whether it runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_step import RECIPE_IMG_PER_S, parser  # noqa: E402 - the sibling helper


def parse_args() -> argparse.Namespace:
    parse = parser(__doc__.split("\n\n")[0], "untimed steps first (cuDNN autotuning)")
    parse.add_argument("--mindspore-gpu", action="store_true", help="also try MindSpore's GPU backend")
    return parse.parse_args()


def build(batch: int, size: int):  # noqa: ANN201 - (train step, images, labels, lr)
    import torch

    from mindzoo import convert
    from mindzoo.engine.loss import DynamicLossScale, loss_scale_plan
    from mindzoo.engine.plan import amp_settings
    from mindzoo.engine.schedules import lr_array
    from mindzoo.engine.torch import steps
    from mindzoo.recipes import load_recipe
    from mindzoo.registry import create_model

    recipe = load_recipe("resnet50_bam", {"batch_size": str(batch)})
    device = torch.device("cuda", 0)
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(recipe.seed)
    net = create_model("resnet50_bam", framework="torch", num_classes=recipe.num_classes, input_size=size)
    net = net.to(device).to(memory_format=torch.channels_last).train()
    names = convert.mindspore_names(net.state_dict())
    optimizer = steps.build_optimizer({names[k]: p for k, p in net.named_parameters()}, recipe.optim)
    plan = loss_scale_plan(recipe.loss_scale)
    scaler = DynamicLossScale(plan.dynamic_init, plan.dynamic_factor, plan.dynamic_window) \
        if plan.kind == "dynamic" else None
    amp = steps.amp_dtype(amp_settings(recipe, "gpu")[0], "gpu")
    step = steps.TrainStep(net, steps.build_loss(recipe.loss, recipe.num_classes), optimizer, plan, amp=amp,
                           scaler=scaler, world_size=1)
    generator = torch.Generator(device=device).manual_seed(0)
    images = torch.randn(batch, 3, size, size, device=device, generator=generator)
    images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, recipe.num_classes, (batch,), device=device, generator=generator)
    lr = float(lr_array(recipe.schedule, epochs=recipe.epochs, steps_per_epoch=1000)[0])
    print(f"resnet50_bam: batch {batch} at {size} px, AMP {amp_settings(recipe, 'gpu')[0]} -> {amp}, "
          f"loss scale {plan.kind} {plan.value:g}, {torch.cuda.get_device_name(0)}", flush=True)
    return step, images, labels, lr


def measure(step, images, labels, lr: float, steps_timed: int, warmup: int) -> float:  # noqa: ANN001
    import torch

    for _ in range(warmup):
        step(images, labels, lr)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps_timed):
        loss, _ = step(images, labels, lr)  # float(loss) syncs every step, as the trainer's logging does
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    print(f"last loss {loss:.4f}; {seconds / steps_timed * 1000:.1f} ms/step", flush=True)
    return images.shape[0] * steps_timed / seconds


MINDSPORE_PROBE = """
import numpy as np, mindspore as ms
from mindspore import nn
ms.set_device("GPU")
net = nn.Dense(4, 2)
opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt)
print("loss", step(ms.Tensor(np.ones((2, 4), np.float32)), ms.Tensor(np.zeros((2, 2), np.float32))))
"""


def try_mindspore_gpu() -> str:
    """Whether MindSpore's GPU backend trains a step here (its wheel targets CUDA 11.1/11.6)."""
    try:
        proc = subprocess.run([sys.executable, "-c", MINDSPORE_PROBE], capture_output=True, text=True, timeout=600,
                              env={**os.environ, "GLOG_v": "3"})
    except subprocess.TimeoutExpired:
        return "does not run: no step within 600 s"
    if proc.returncode == 0 and "loss" in proc.stdout:
        return "runs (a Momentum step on device GPU)"
    lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
    reason = next((line for line in reversed(lines) if "Error" in line or "error" in line), lines[-1] if lines else "")
    return f"does not run (exit {proc.returncode}): {reason[:300]}"


def main() -> int:
    args = parse_args()
    import torch

    if not torch.cuda.is_available():
        print(f"no GPU: torch {torch.__version__} sees no CUDA device on this machine; this benchmark needs an NVIDIA "
              "GPU (the recipe's reference is one V100). Nothing was measured.", file=sys.stderr)
        return 2
    step, images, labels, lr = build(args.batch_size, args.input_size)
    rate = measure(step, images, labels, lr, args.steps, args.warmup)
    print(f"torch engine: {rate:.1f} img/s; recipe (MindSpore, one V100): {RECIPE_IMG_PER_S:.0f} img/s")
    if args.mindspore_gpu:
        print(f"MindSpore GPU backend: {try_mindspore_gpu()}")
    print(f"ratio torch_gpu_vs_recipe {rate / RECIPE_IMG_PER_S:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
