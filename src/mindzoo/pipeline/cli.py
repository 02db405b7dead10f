"""``mindzoo pipeline compile | submit | run-local`` (control environment: kfp)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from mindzoo.configkit import build, click_options
from mindzoo.pipeline.config import CompileConfig, PipelineConfig, RunLocalConfig, SubmitConfig


def _say(line: str) -> None:
    click.echo(line, err=True)


def _configs(flags: dict[str, Any], own: type) -> tuple[Any, PipelineConfig]:
    """Split the flags of a command between its own config and the shared PipelineConfig."""
    mine = {f.name for f in dataclasses.fields(own)}
    cfg = build(own, {k: v for k, v in flags.items() if k in mine}, "pipeline")
    return cfg, build(PipelineConfig, {k: v for k, v in flags.items() if k not in mine}, "pipeline")


@click.group("pipeline")
def pipeline() -> None:
    """Compile the Kubeflow pipelines, submit them to a KFP server, or run them locally (kfp.local)."""


@pipeline.command("compile")
@click_options(CompileConfig)
@click_options(PipelineConfig)
def compile_(**flags: Any) -> None:
    """Write one KFP IR YAML per pipeline (train_pipeline.yaml, infer_pipeline.yaml) to --output."""
    from mindzoo.pipeline.compile import compile_all

    cfg, pipeline_cfg = _configs(flags, CompileConfig)
    for path in compile_all(cfg.pipelines, pipeline_cfg, Path(cfg.output).expanduser()):
        click.echo(f"compiled {path}")


@pipeline.command("submit")
@click_options(SubmitConfig)
@click_options(PipelineConfig)
def submit(**flags: Any) -> None:
    """Start a run on Kubeflow Pipelines (kfp.Client.create_run_from_pipeline_package); prints the run id."""
    from mindzoo.pipeline.submit import submit as start

    cfg, pipeline_cfg = _configs(flags, SubmitConfig)
    click.echo(start(cfg, pipeline_cfg, _say))


@pipeline.command("run-local")
@click_options(RunLocalConfig)
@click_options(PipelineConfig)
def run_local(**flags: Any) -> None:
    """Run the compiled train pipeline (or --pipeline infer) with kfp.local in the built image against the
    local stack; the last lines are the final inference's acc.log (the recipe's own postprocess lines)."""
    from mindzoo.pipeline.local import run

    cfg, pipeline_cfg = _configs(flags, RunLocalConfig)
    done = run(cfg, pipeline_cfg, _say)
    click.echo(f"pipeline run {done.pipeline_run_id or '?'} finished in {done.seconds:.0f}s; files in {done.root}")
    click.echo(f"MLflow: {done.mlflow_url}")
    click.echo(done.acc_log)


for _command, _own in ((submit, SubmitConfig), (run_local, RunLocalConfig)):  # key=value flags may repeat
    _defaults = {f.name: f.default for f in dataclasses.fields(_own)}
    for _param in _command.params:
        if _param.name in ("param", "set"):
            _param.multiple, _param.default = True, _defaults[_param.name]
