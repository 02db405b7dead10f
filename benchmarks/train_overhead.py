"""Step time of `mindzoo train`'s loop against a bare MindSpore loop: same net, batch, data, process.

The bare loop is what a MindSpore user writes by hand: build the net, ``nn.Momentum``
on the LR array, ``amp.build_train_network``, then ``for images, labels in
dataset: loss = step(images, labels)``. The mindzoo loop is the engine's
:class:`~mindzoo.engine.trainer.Trainer` with everything it does per step: LR
position, NaN check, per-step MLflow metrics (when the local stack is up),
progress, checkpoint cadence. Both build the same pipeline per epoch. The two
alternate for ``--rounds`` rounds; each round's first epoch compiles and is not
timed. The result is the ratio of the medians (over rounds) of the mean steady-state step times.

Needs the local stack (`mindzoo stack up`) for the dataset; run with the
runtime environment::

    GLOG_v=3 .venv/bin/python benchmarks/train_overhead.py

The last line is ``ratio train_vs_bare VALUE`` (target: <= 1.05).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def digits_dataset() -> str:
    """The bundled digits, preprocessed into the local stack (reused when already there)."""
    import subprocess
    import sys

    from mindzoo.config import DigitsConfig
    from mindzoo.datasets import digits

    raw = Path(tempfile.mkdtemp(prefix="bench-digits-")) / "cifar10"
    digits.make(DigitsConfig(format="cifar10"), raw)
    proc = subprocess.run([str(Path(sys.executable).with_name("mindzoo")), "preprocess", "--source", str(raw),
                           "--no-tracking-enabled"], capture_output=True, text=True, check=True)
    return next(w for w in proc.stderr.split() if w.startswith("s3://mindzoo/datasets/"))


def bare_epochs(plan, epochs: int) -> float:
    """Mean seconds per step of a hand-written MindSpore loop after its first (compiling) epoch."""
    import mindspore as ms
    from mindspore import nn
    from mindspore.amp import build_train_network

    from mindzoo.data.pipeline import create_dataset
    from mindzoo.engine.mindspore.backend import DeviceInput
    from mindzoo.engine.mindspore.steps import SmoothCrossEntropy
    from mindzoo.engine.schedules import lr_array
    from mindzoo.registry import create_model

    recipe = plan.recipe
    ms.set_seed(recipe.seed)
    net = create_model(plan.model, num_classes=recipe.num_classes, input_size=plan.input_size)
    steps = create_dataset(plan.local_data, "train", plan.data_cfg, recipe.batch_size, train=True).get_dataset_size()
    lr = lr_array(recipe.schedule, epochs=epochs, steps_per_epoch=steps)
    opt = nn.Momentum(net.trainable_params(), ms.Tensor(lr), recipe.optim.momentum,
                      weight_decay=recipe.optim.weight_decay)
    step = build_train_network(net, opt, SmoothCrossEntropy(recipe.num_classes, 1.0, 0.0), level="O0")
    times: list[float] = []
    for epoch in range(epochs):
        data = create_dataset(plan.local_data, "train", plan.data_cfg, recipe.batch_size, train=True, seed=epoch,
                              device_jitter=False)
        normalise = DeviceInput(plan.data_cfg)  # training batches are uint8: both loops normalise the same way
        tick, epoch_times = time.perf_counter(), []
        for images, labels in data.create_tuple_iterator(num_epochs=1, do_copy=False):
            float(step(normalise(images), labels).asnumpy())
            now = time.perf_counter()
            epoch_times.append(now - tick)
            tick = now
        if epoch:
            times += epoch_times
    return float(np.mean(times))


def mindzoo_epochs(plan, cfg, epochs: int, tracker) -> float:
    """Mean seconds per step of the engine's Trainer after its first (compiling) epoch."""
    import dataclasses

    from mindzoo.engine import create_backend
    from mindzoo.engine.trainer import Trainer

    plan = dataclasses.replace(plan, recipe=dataclasses.replace(plan.recipe, epochs=epochs))
    backend = create_backend(device="cpu", mode="graph")
    backend.start()
    trainer = Trainer(backend, plan, cfg, rank=0, world_size=1, store=None, tracker=tracker, say=lambda line: None)
    trainer.prepare()
    trainer.fit()
    trainer.cleanup()
    return float(np.mean([h["perf/step_ms"] for h in trainer.state.history[1:]])) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="", help="converted dataset (default: digits into the local stack)")
    parser.add_argument("--recipe", default="googlenet_cifar10")
    parser.add_argument("--input-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3, help="per loop and round; the first compiles")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from mindzoo.config import StorageConfig, TrainConfig
    from mindzoo.engine.mindspore import runtime
    from mindzoo.engine.plan import plan_training
    from mindzoo.engine.runlog import AsyncTracker
    from mindzoo.storage import Storage
    from mindzoo.tracking import create_tracker

    dataset = args.dataset or digits_dataset()
    cfg = TrainConfig(dataset=dataset, recipe=args.recipe, input_size=args.input_size, final_eval=False,
                      set=(f"batch_size={args.batch_size}", f"epochs={args.epochs}"), log_every=10**9)
    plan = plan_training(cfg, Storage.connect(StorageConfig()))
    runtime.setup("cpu", "graph", 0)
    from mindzoo.endpoints import resolve_tracking_uri

    uri = resolve_tracking_uri()
    bare, ours = [], []
    for round_ in range(args.rounds):
        bare.append(bare_epochs(plan, args.epochs))
        tracker = AsyncTracker(create_tracker(uri, "mindzoo-benchmarks", f"train-overhead-{round_}"))
        ours.append(mindzoo_epochs(plan, cfg, args.epochs, tracker))
        tracker.finish()
        print(f"round {round_ + 1}: bare {bare[-1] * 1000:.1f} ms/step, mindzoo {ours[-1] * 1000:.1f} ms/step",
              flush=True)
    print(f"{plan.model} {args.recipe} {args.input_size}px batch {args.batch_size}, "
          f"tracking {'MLflow ' + uri if uri else 'off'}")
    print(f"bare {np.median(bare) * 1000:.1f} ms/step, mindzoo {np.median(ours) * 1000:.1f} ms/step")
    print(f"ratio train_vs_bare {np.median(ours) / np.median(bare):.3f}")


if __name__ == "__main__":
    main()
