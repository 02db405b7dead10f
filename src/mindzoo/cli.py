"""``mindzoo``: one subcommand per pipeline step, plus the local stack and helpers.

Flags derive from the config dataclasses in :mod:`mindzoo.config`. Every user
error ends as one ``error: ...`` line on stderr and a non-zero exit; only bugs
keep a traceback.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mindzoo import __version__
from mindzoo.config import (
    CheckpointExportConfig, CheckpointImportConfig, DigitsConfig, RunsCompareConfig, RunsReplayConfig, StackConfig,
    StorageConfig, TrackingConfig,
)
from mindzoo.configkit import build, click_options
from mindzoo.errors import MindzooError, NotInEnvironment
from mindzoo.steps import STEPS

# Which environment has what: a command checks for its marker module first.
ENVIRONMENTS = {
    "runtime": (".venv", "mindspore"),
    "control": (".venv-control", "kfp"),
}


def requires(env: str, module: str | None = None) -> Callable[[Callable], Callable]:
    """Fail with a pointer to the right environment when its packages are missing."""
    venv, marker = ENVIRONMENTS[env]

    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for name in filter(None, (marker, module)):
                if importlib.util.find_spec(name) is None:
                    command = click.get_current_context().command_path
                    raise NotInEnvironment(
                        f"`{command}` needs the {env} environment ({name} is not installed here): "
                        f"run {venv}/bin/{command}"
                    )
            return fn(*args, **kwargs)

        return wrapper

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="mindzoo")
def cli() -> None:
    """MindSpore ModelZoo image-classification recipes as a Kubeflow pipeline."""


def _step_command(step: str) -> click.Command:
    """``mindzoo.steps.<step>.command``; step modules import their heavy libraries lazily."""
    return importlib.import_module(f"mindzoo.steps.{step}").command


for _step in STEPS:
    cli.add_command(_step_command(_step), _step)


def _pipeline_group() -> click.Group:
    """`mindzoo pipeline ...`: compiling and running pipelines needs kfp (the control environment)."""
    from mindzoo.pipeline.cli import pipeline

    for command in pipeline.commands.values():
        command.callback = requires("control")(command.callback)
    return pipeline


cli.add_command(_pipeline_group())
cli.add_command(importlib.import_module("mindzoo.launcher.cli").launch)  # needs only `kubernetes` (both envs)


# -- the local stack ---------------------------------------------------------------
@cli.group()
def stack() -> None:
    """The local stack: MinIO, MLflow and a container engine on loopback."""


@stack.command("up")
@click_options(StackConfig)
@requires("control", "mlflow.server")
def stack_up(**flags: Any) -> None:
    """Start (or reuse) MinIO, MLflow and the container engine; idempotent."""
    from mindzoo import stack as local_stack

    cfg = build(StackConfig, flags, "stack")
    endpoints = local_stack.up(cfg, say=lambda line: click.echo(line, err=True))
    click.echo(f"stack up: S3 {endpoints.s3_endpoint}  MLflow {endpoints.mlflow_uri}  "
               f"engine {endpoints.engine} {endpoints.engine_socket}")


@stack.command("down")
def stack_down() -> None:
    """Stop every server the stack started (data is kept)."""
    from mindzoo import stack as local_stack

    local_stack.down(say=lambda line: click.echo(line, err=True))


@stack.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output")
def stack_status(as_json: bool) -> None:
    """Endpoints and health of each server (exit 1 when the stack is not up)."""
    from mindzoo import stack as local_stack

    info = local_stack.status()
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        click.echo(f"state:   {info['state_dir']}")
        for name, svc in info["services"].items():
            health = "healthy" if svc["healthy"] else ("running" if svc["running"] else "stopped")
            click.echo(f"{name:8} {health:8} {svc['url'] or '-'}")
        if info.get("s3_endpoint"):
            click.echo(f"S3:      {info['s3_endpoint']} (access key {info['s3_access_key']})")
            click.echo(f"MLflow:  {info['mlflow_uri']}")
            click.echo(f"engine:  {info['engine']} {info['engine_socket']}")
    sys.exit(0 if info["up"] else 1)


# -- object storage ------------------------------------------------------------------
@cli.group()
def storage() -> None:
    """Copy to and from the object store (s3:// URIs)."""


def _storage(flags: dict[str, Any]) -> Any:
    from mindzoo.storage import Storage

    return Storage.connect(build(StorageConfig, {k.removeprefix("storage__"): v for k, v in flags.items()},
                                 "storage"))


@storage.command("ls")
@click.argument("uri")
@click_options(StorageConfig, prefix="storage")
def storage_ls(uri: str, **flags: Any) -> None:
    """List objects under an s3:// prefix."""
    from mindzoo.storage import S3Uri

    for key in _storage(flags).list(S3Uri.parse(uri)):
        click.echo(key)


@storage.command("cp")
@click.argument("src")
@click.argument("dst")
@click_options(StorageConfig, prefix="storage")
def storage_cp(src: str, dst: str, **flags: Any) -> None:
    """Upload (local → s3://, a folder is published with a manifest) or download (s3:// → local)."""
    from mindzoo.storage import S3Uri

    store = _storage(flags)
    if src.startswith("s3://") and not dst.startswith("s3://"):
        uri = S3Uri.parse(src)
        if store.read_manifest(uri) is not None:
            manifest = store.fetch(uri, Path(dst), progress=sys.stderr.isatty())
            click.echo(f"downloaded {len(manifest.files)} files from {src} to {dst}")
        else:
            store.download_file(uri, Path(dst))
            click.echo(f"downloaded {src} to {dst}")
    elif dst.startswith("s3://") and not src.startswith("s3://"):
        path = Path(src)
        if not path.exists():
            raise MindzooError(f"no such file or folder: {src}")
        if path.is_dir():
            manifest = store.publish(path, S3Uri.parse(dst), progress=sys.stderr.isatty())
            click.echo(f"published {len(manifest.files)} files to {dst} (version {manifest.version})")
        else:
            store.upload_file(path, S3Uri.parse(dst))
            click.echo(f"uploaded {src} to {dst}")
    else:
        raise MindzooError("exactly one of SRC and DST must be an s3:// URI")


# -- checkpoints in and out ------------------------------------------------------------
@cli.group()
def checkpoints() -> None:
    """ModelZoo .ckpt files in and out (parameter names mapped per family)."""


def _lazy_storage(flags: dict[str, Any]) -> Callable[[], Any]:
    return functools.lru_cache(maxsize=1)(lambda: _storage(flags))


@checkpoints.command("import")
@click.argument("src")
@click.argument("dest")
@click_options(CheckpointImportConfig)
@click_options(StorageConfig, prefix="storage")
@requires("runtime", "mindspore")
def checkpoints_import(src: str, dest: str, **flags: Any) -> None:
    """Turn a ModelZoo .ckpt SRC (optimizer entries ignored and reported) into a checkpoint folder DEST
    (model.ckpt + model.json; local or s3://) that evaluate, export and train --init-from take."""
    from mindzoo.engine.interchange import import_modelzoo

    own = {k: v for k, v in flags.items() if not k.startswith("storage__")}
    cfg = build(CheckpointImportConfig, {**own, "src": src, "dest": dest}, "checkpoints.import")
    store = _lazy_storage({k: v for k, v in flags.items() if k.startswith("storage__")})
    out = import_modelzoo(cfg, store, say=lambda line: click.echo(line, err=True))
    click.echo(f"imported {src} -> {out}")


@checkpoints.command("export")
@click.argument("src")
@click.argument("dest")
@click_options(CheckpointExportConfig)
@click_options(StorageConfig, prefix="storage")
@requires("runtime", "mindspore")
def checkpoints_export(src: str, dest: str, **flags: Any) -> None:
    """Write the mindzoo checkpoint SRC as DEST.ckpt in the ModelZoo's parameter names (local or s3://), for
    the ModelZoo's own eval.py / export.py."""
    from mindzoo.engine.interchange import export_modelzoo

    own = {k: v for k, v in flags.items() if not k.startswith("storage__")}
    cfg = build(CheckpointExportConfig, {**own, "src": src, "dest": dest}, "checkpoints.export")
    store = _lazy_storage({k: v for k, v in flags.items() if k.startswith("storage__")})
    click.echo(f"exported {src} -> {export_modelzoo(cfg, store, say=lambda line: click.echo(line, err=True))}")


# -- comparing runs -------------------------------------------------------------------
@cli.group()
def runs() -> None:
    """Compare runs tracked in MLflow (layout: docs/mlflow.md)."""


@runs.command("compare")
@click.argument("experiment")
@click.argument("run_ids", nargs=-1)
@click_options(RunsCompareConfig)
@click_options(TrackingConfig, prefix="tracking", skip=("tracking.experiment", "tracking.enabled"))
@requires("control", "matplotlib")
def runs_compare(experiment: str, run_ids: tuple[str, ...], **flags: Any) -> None:
    """Compare runs of EXPERIMENT (name or id): the params that differ, key metrics, the best run by eval/top1.

    Without RUN_IDs: the --last N runs of --step (newest first)."""
    from mindzoo.runs.compare import compare, tracking_uri

    tracking = build(TrackingConfig, {k.removeprefix("tracking__"): v for k, v in flags.items()
                                      if k.startswith("tracking__")}, "tracking")
    own = {k: v for k, v in flags.items() if not k.startswith("tracking__")}
    cfg = build(RunsCompareConfig, {**own, "experiment": experiment, "run_ids": run_ids}, "runs.compare")
    click.echo(compare(cfg, tracking_uri(tracking), say=lambda line: click.echo(line, err=True)), nl=False)


@runs.command("replay")
@click.argument("spill")
@click_options(RunsReplayConfig)
def runs_replay(spill: str, **flags: Any) -> None:
    """Deliver to MLflow what a step saved in SPILL while MLflow was unreachable (the file its warning
    named); the file is removed once everything is delivered, else kept with what is still pending."""
    from mindzoo.tracking import replay_spill

    cfg = build(RunsReplayConfig, {**flags, "spill": spill}, "runs.replay")
    click.echo(replay_spill(Path(cfg.spill), cfg.tracking_uri, say=lambda line: click.echo(line, err=True)))


# -- bundled data ---------------------------------------------------------------------
@cli.group()
def datasets() -> None:
    """Bundled datasets for demos and tests."""


@datasets.command("make-digits")
@click.argument("out", type=click.Path(path_type=Path))
@click_options(DigitsConfig)
@click.option("--force", is_flag=True, help="Replace OUT if it exists")
@requires("runtime", "sklearn")
def make_digits(out: Path, force: bool, **flags: Any) -> None:
    """Write scikit-learn's digits to OUT as CIFAR-10 binaries or an ImageNet-style tree."""
    from mindzoo.datasets import digits

    cfg = build(DigitsConfig, flags, "datasets")
    counts = digits.make(cfg, out, force=force)
    click.echo(f"wrote {counts['train']} train + {counts['val']} val digits to {out} ({cfg.format})")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user errors into one line and an exit code."""
    try:
        cli.main(args=argv, prog_name="mindzoo", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        hint = f" (see `{err.ctx.command_path} --help`)" if getattr(err, "ctx", None) else ""
        click.echo(f"error: {err.format_message()}{hint}", err=True)
        sys.exit(err.exit_code)
    except MindzooError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    except OSError as err:  # a folder or file the user named is not there, not ours, or the disk is full
        where = f": {err.filename}" if err.filename else ""
        click.echo(f"error: {err.strerror or err}{where}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
