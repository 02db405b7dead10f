"""What every step shares: flags, storage, tracking, KFP executor output, timing.

``step_command("preprocess", PreprocessConfig, run)`` gives a click command with
the step's own flags (from its config dataclass), the ``--storage-*`` and
``--tracking-*`` flags, and ``--executor-input`` (KFP's ``{{$}}``). It builds the
config (errors name dotted keys), runs ``run(cfg, ctx)`` and then, whatever
happened to tracking, writes the executor output and reports one summary line.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from mindzoo.config import StorageConfig, TrackingConfig
from mindzoo.configkit import build, click_options, follow_artifacts
from mindzoo.errors import ConfigError
from mindzoo.kfp_io import ExecutorIO
from mindzoo.runs.layout import ENV_PIPELINE_RUN_ID, KIND_STEP, NESTED_STEPS, Tag, pipeline_tags
from mindzoo.steps import STEPS
from mindzoo.tracking import NullTracker, Tracker, create_tracker


@dataclass
class StepContext:
    """Handed to a step's ``run``: lazily connected storage, tracking, KFP I/O."""

    step: str
    storage_cfg: StorageConfig
    tracking_cfg: TrackingConfig
    kfp: ExecutorIO
    tracker: Tracker = field(default_factory=NullTracker)
    started: float = field(default_factory=time.monotonic)
    _storage: Any = None
    _scratch: list = field(default_factory=list)

    @property
    def storage(self) -> Any:
        """The object store (connected on first use, so offline steps never need one)."""
        if self._storage is None:
            from mindzoo.storage import Storage

            self._storage = Storage.connect(self.storage_cfg)
        return self._storage

    def start_tracking(self, experiment: str, run_name: str, params: Mapping[str, Any] | None = None,
                       tags: Mapping[str, Any] | None = None) -> Tracker:
        """Open the step's MLflow run (no-op without a tracking server)."""
        target = self.tracking_target(experiment, tags)
        self.tracker = create_tracker(target.uri, target.experiment, run_name, target.tags,
                                      pipeline_run_id=target.pipeline_run_id)
        if params:
            self.tracker.log_params(params)
        return self.tracker

    def tracking_target(self, experiment: str, tags: Mapping[str, Any] | None = None) -> TrackingTarget:
        """Where this step's run goes, per :mod:`mindzoo.runs.layout` (also used by train's async tracker)."""
        from mindzoo.endpoints import resolve_tracking_uri

        all_tags = {Tag.STEP: self.step, Tag.KIND: KIND_STEP, **_pipeline_tags(), **(tags or {})}
        nest = all_tags.get(Tag.PIPELINE_RUN_ID) if self.step in NESTED_STEPS else None
        return TrackingTarget(resolve_tracking_uri(self.tracking_cfg), self.tracking_cfg.experiment or experiment,
                              all_tags, nest)

    def scratch(self, prefix: str) -> Path:
        """A temporary folder for files the step's MLflow run logs: removed once tracking has delivered them,
        kept when it could not (a spilled run names them for `mindzoo runs replay`)."""
        folder = Path(tempfile.mkdtemp(prefix=prefix))
        self._scratch.append(folder)
        return folder

    def clean_scratch(self, delivered: bool) -> None:
        if delivered:
            for folder in self._scratch:
                shutil.rmtree(folder, ignore_errors=True)
        self._scratch.clear()

    def say(self, line: str) -> None:
        click.echo(f"[{self.step}] {line}", err=True)


@dataclass(frozen=True)
class TrackingTarget:
    uri: str | None  # None: tracking off
    experiment: str
    tags: dict[str, str]
    pipeline_run_id: str | None  # nest the run under this pipeline run's parent run


_PIPELINE_RUN_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-")


def _pipeline_tags() -> dict[str, str]:
    """Tags that link a step's run to its pipeline run and image, when known."""
    tags = pipeline_tags(os.environ)
    run_id = tags.get(Tag.PIPELINE_RUN_ID, "")
    # The id goes into MLflow search filters: refuse quotes and the like instead of escaping them.
    if not set(run_id) <= _PIPELINE_RUN_ID_CHARS or len(run_id) > 200:
        raise ConfigError(f"${ENV_PIPELINE_RUN_ID}", f"use at most 200 letters, digits, '.', '_', ':' or '-' "
                                                     f"(got {run_id[:40]!r})")
    return tags


def step_command(name: str, config_cls: type, run: Callable[[Any, StepContext], Any],
                 help: str) -> click.Command:  # noqa: A002
    """The click command for a step (see module docstring)."""

    @click.command(name=name, help=help)
    @click_options(config_cls)
    @click_options(StorageConfig, prefix="storage")
    @click_options(TrackingConfig, prefix="tracking")
    @click.option("--executor-input", default="", help="KFP executor input JSON ({{$}}); set by the pipeline")
    def command(executor_input: str, **flags: Any) -> None:
        if name in STEPS:  # (the tests build demo steps from the same machinery)
            _require_runtime(name)
        storage = {k.removeprefix("storage__"): v for k, v in flags.items() if k.startswith("storage__")}
        tracking = {k.removeprefix("tracking__"): v for k, v in flags.items() if k.startswith("tracking__")}
        own = {k: v for k, v in flags.items() if not k.startswith(("storage__", "tracking__"))}
        cfg = follow_artifacts(build(config_cls, own, name))
        if getattr(cfg, "device", "") == "ascend":  # train, evaluate, export: before any work
            from mindzoo.ascend import require_cann

            require_cann("ascend")
        ctx = StepContext(name, build(StorageConfig, storage, "storage"), build(TrackingConfig, tracking, "tracking"),
                          ExecutorIO.parse(executor_input))
        _execute(run, cfg, ctx)

    return command


def _require_runtime(step: str) -> None:
    """Every step runs on the runtime environment (the one in the images): say so from the other one."""
    import importlib.util

    from mindzoo.errors import NotInEnvironment

    if importlib.util.find_spec("mindspore") is None:
        raise NotInEnvironment(f"`mindzoo {step}` needs the runtime environment (mindspore is not installed here): "
                               f"run .venv/bin/mindzoo {step}")


def _execute(run: Callable[[Any, StepContext], Any], cfg: Any, ctx: StepContext) -> None:
    status = "FAILED"
    try:
        run(cfg, ctx)
        status = "FINISHED"
    finally:
        report = ctx.tracker.finish(status)
        ctx.clean_scratch(report.ok)
        if not report.ok:
            click.echo(f"warning: tracking: {report.message}", err=True)
        if status == "FINISHED":
            ctx.kfp.write()
            seconds = time.monotonic() - ctx.started
            ctx.say(f"done in {seconds:.1f}s" + ("" if report.ok else " (tracking incomplete, see warning)"))
        sys.stderr.flush()

