"""``mindzoo train``: a registered model, its ModelZoo recipe and a converted dataset → checkpoints in MinIO.

Orchestration only; the work lives in :mod:`mindzoo.engine`. The same command
runs as one process, as ``--workers N`` local data-parallel processes (one
scheduler plus N workers of this same command), or as one role of a cluster
whose ``MS_*`` variables a launcher set (a Kubernetes pod, msrun).
"""

from __future__ import annotations

from mindzoo.config import TrainConfig
from mindzoo.steps.context import StepContext, step_command


def run(cfg: TrainConfig, ctx: StepContext) -> None:
    from mindzoo.engine import distributed, training

    if cfg.engine == "mindspore" and distributed.is_scheduler():
        training.run_scheduler(cfg)
    elif cfg.workers > 1 and not distributed.in_cluster(cfg.engine):
        training.launch(cfg, ctx)
    else:
        training.train(cfg, ctx)


def _repeatable(command, name: str):  # noqa: ANN001, ANN202 - click objects
    """Let a tuple flag be given several times (``--set a=1 --set b=2``) as well as comma-separated."""
    for param in command.params:
        if param.name == name:
            param.multiple, param.default = True, ()
    return command


command = _repeatable(step_command(
    "train", TrainConfig, run,
    help="Train a registered model with its ModelZoo recipe (any key overridable with --set) on a dataset "
         "published by `mindzoo preprocess`. Checkpoints go to <output>/<run id> in MinIO; run again with the "
         "same --run-id to resume from the last one. --workers N trains data-parallel on N local processes.",
), "set")
