"""``mindzoo launch train`` (the launcher, in a task pod) and ``mindzoo launch node`` (in each worker pod)."""

from __future__ import annotations

from typing import Any

import click

from mindzoo.config import StorageConfig, TrackingConfig, TrainConfig
from mindzoo.configkit import build, click_options, follow_artifacts
from mindzoo.kfp_io import ExecutorIO
from mindzoo.pipeline.config import LaunchConfig


@click.group("launch")
def launch() -> None:
    """Distributed training on Kubernetes: an Indexed Job of worker pods plus a headless Service, or a TrainJob."""


def _split(flags: dict[str, Any]) -> dict[str, dict[str, Any]]:
    parts: dict[str, dict[str, Any]] = {"train": {}, "launch": {}, "storage": {}, "tracking": {}}
    for key, value in flags.items():
        head, sep, rest = key.partition("__")
        if sep and head in parts:
            parts[head][rest] = value
        else:
            parts["train"][key] = value
    return parts


@launch.command("train")
@click_options(TrainConfig)
@click_options(LaunchConfig, prefix="launch")
@click_options(StorageConfig, prefix="storage")
@click_options(TrackingConfig, prefix="tracking")
@click.option("--executor-input", default="", help="KFP executor input JSON ({{$}}); set by the pipeline")
def launch_train(executor_input: str, **flags: Any) -> None:
    """`mindzoo train` on --launch-nodes pods of an Indexed Job or a Kubeflow Trainer TrainJob (--launch-kind;
    MindSpore dynamic cluster, pod 0 hosts the scheduler); follows rank 0's log, fails with a failing worker's
    log tail, deletes the Job or TrainJob at the end."""
    from mindzoo.launcher import train as launcher
    from mindzoo.steps.context import StepContext, _execute

    parts = _split(flags)
    cfg = follow_artifacts(build(TrainConfig, parts["train"], "train"))  # the worker pods get the location itself
    launch_cfg = build(LaunchConfig, parts["launch"], "launch")
    ctx = StepContext("train", build(StorageConfig, parts["storage"], "storage"),
                      build(TrackingConfig, parts["tracking"], "tracking"), ExecutorIO.parse(executor_input))
    _execute(lambda c, x: launcher.run(c, launch_cfg, x), cfg, ctx)


for _param in launch_train.params:  # --set may be given several times, as for `mindzoo train`
    if _param.name == "set":
        _param.multiple, _param.default = True, ()


@launch.command("node", context_settings={"ignore_unknown_options": True})
@click.option("--workers", type=click.INT, default=1, show_default=True, help="Worker processes in this pod")
@click.option("--result", default="", help="s3:// URI where rank 0 publishes its result for the launcher")
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def launch_node(workers: int, result: str, argv: tuple[str, ...]) -> None:
    """This pod's share of a launch (the launcher's Job runs it): `-- train FLAGS...` as MindSpore workers."""
    from mindzoo.errors import ConfigError
    from mindzoo.launcher import node
    from mindzoo.launcher.train import publish_result, rank_uri

    if not argv or argv[0] != "train":
        raise ConfigError("launch.node", "expected `-- train FLAGS...` after the options")
    if workers < 1:
        raise ConfigError("launch.node.workers", "must be >= 1")
    node.run(list(argv), workers, say=lambda line: click.echo(f"[launch] {line}", err=True),
             publish=(lambda payload: publish_result(result, payload)) if result else None,
             publish_rank=(lambda rank, payload: publish_result(str(rank_uri(result, rank)), payload)) if result else None)
