"""The runs to compare, read from the MLflow server through its client.

A row is one step's run; a train run that belongs to a pipeline run also shows the
metrics its sibling steps (evaluate, infer, export) logged (``infer/latency_p50_ms``, ``export/...``) under the
same parent, so one row tells the whole pipeline run. A run's own value wins over a
sibling's (train's final ``eval/top1`` and evaluate's are the same scoring).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mindzoo.config import RunsCompareConfig
from mindzoo.errors import ConfigError, MindzooError
from mindzoo.runs.layout import KIND_PIPELINE, Tag

KEY = "runs.compare"
SIBLING_ORDER = ("evaluate", "infer", "export")  # whose metric a row shows when two siblings logged it


@dataclass(frozen=True)
class RunRow:
    run_id: str
    name: str
    step: str
    status: str
    start_time: int  # ms since the epoch
    pipeline_run_id: str
    params: dict[str, str]
    metrics: dict[str, float]  # latest value of each metric: the run's own, then its siblings'
    from_siblings: frozenset[str] = field(default_factory=frozenset)


def find_experiment(client: Any, name_or_id: str, uri: str) -> Any:
    """The experiment by name (or id); a one-line error listing what exists otherwise."""
    experiment = client.get_experiment_by_name(name_or_id)
    if experiment is None and name_or_id.isdigit():
        experiment = _by_id(client, name_or_id)
    if experiment is not None:
        return experiment
    known = sorted(e.name for e in client.search_experiments(max_results=200) if e.name != "Default")
    hint = f"; known: {', '.join(known[:12])}{' ...' if len(known) > 12 else ''}" if known else ""
    raise ConfigError(f"{KEY}.experiment", f"no experiment {name_or_id!r} at {uri}{hint}")


def _by_id(client: Any, experiment_id: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_experiment(experiment_id)
    except MlflowException:
        return None


def load_rows(client: Any, experiment: Any, cfg: RunsCompareConfig) -> list[RunRow]:
    """The runs ``cfg`` names (or the newest ``--last`` of ``--step``), newest first, with sibling metrics."""
    runs = _named_runs(client, experiment, cfg.run_ids) if cfg.run_ids else _latest_runs(client, experiment, cfg)
    if not runs:
        raise MindzooError(f"no {'' if cfg.step == 'any' else cfg.step + ' '}runs in experiment {experiment.name!r}")
    siblings = _siblings(client, experiment.experiment_id, runs)
    return [_row(run, siblings.get(run.data.tags.get(Tag.PARENT, ""), []) if _is_train(run) else []) for run in runs]


def _is_train(run: Any) -> bool:
    return run.data.tags.get(Tag.STEP) == "train"


def _latest_runs(client: Any, experiment: Any, cfg: RunsCompareConfig) -> list[Any]:
    # Parent runs carry no step tag, so filtering on the step also leaves them out.
    step = "LIKE '%'" if cfg.step == "any" else f"= '{cfg.step}'"
    return list(client.search_runs([experiment.experiment_id], f"tags.`{Tag.STEP}` {step}",
                                   order_by=["attributes.start_time DESC"], max_results=cfg.limit))


def _named_runs(client: Any, experiment: Any, run_ids: tuple[str, ...]) -> list[Any]:
    from mlflow.exceptions import MlflowException

    runs = []
    for run_id in run_ids:
        try:
            run = client.get_run(run_id)
        except MlflowException:
            raise ConfigError(f"{KEY}.run_ids", f"no run {run_id} on the tracking server") from None
        if run.info.experiment_id != experiment.experiment_id:
            raise ConfigError(f"{KEY}.run_ids", f"run {run_id} is in experiment id {run.info.experiment_id}, "
                                                f"not in {experiment.name!r}")
        if run.data.tags.get(Tag.KIND) == KIND_PIPELINE:
            raise ConfigError(f"{KEY}.run_ids", f"run {run_id} is a pipeline's parent run; give its step runs")
        runs.append(run)
    return runs


def _siblings(client: Any, experiment_id: str, runs: list[Any]) -> dict[str, list[Any]]:
    """{parent run id: its child runs}, for the parents of ``runs``."""
    parents = sorted({run.data.tags[Tag.PARENT] for run in runs if run.data.tags.get(Tag.PARENT) and _is_train(run)})
    return {parent: list(client.search_runs([experiment_id], f"tags.`{Tag.PARENT}` = '{parent}'", max_results=200))
            for parent in parents}


def _row(run: Any, family: list[Any]) -> RunRow:
    metrics = dict(run.data.metrics)
    borrowed: set[str] = set()
    ranked = sorted((r for r in family if r.info.run_id != run.info.run_id),
                    key=lambda r: _sibling_rank(r.data.tags.get(Tag.STEP, "")))
    for sibling in ranked:
        for key, value in sibling.data.metrics.items():
            if key not in metrics:
                metrics[key] = value
                borrowed.add(key)
    tags = run.data.tags
    return RunRow(run.info.run_id, run.info.run_name or tags.get(Tag.RUN_NAME, run.info.run_id[:8]),
                  tags.get(Tag.STEP, ""), run.info.status, int(run.info.start_time or 0),
                  tags.get(Tag.PIPELINE_RUN_ID, ""), dict(run.data.params), metrics, frozenset(borrowed))


def _sibling_rank(step: str) -> int:
    return SIBLING_ORDER.index(step) if step in SIBLING_ORDER else len(SIBLING_ORDER)


def metric_history(client: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    """``[(step, value), ...]`` of one metric, in step order (for the curves)."""
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
