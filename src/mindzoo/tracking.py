"""Experiment tracking: a small Tracker protocol, an MLflow implementation and a null one.

Names (experiments, params, metrics, tags) follow :mod:`mindzoo.runs.layout`. Given a
pipeline run id, a run is opened as the child of that pipeline run's parent run, which
the first step to ask creates (:func:`pipeline_parent`).

Tracking must never take a step down with it. :class:`MlflowTracker` turns the
first failure into one warning, buffers every later call, and retries the
buffer when the step finishes; what still cannot be delivered is reported
(and, if asked, saved as JSON) instead of raised.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mindzoo.runs.layout import KIND_PIPELINE, Tag, parent_run_name

MAX_PARAM_LEN = 6000  # MLflow rejects longer parameter values
MAX_BATCH_METRICS = 1000  # MLflow's limit on metrics per log_batch request
PARENT_SETTLE_S = 2.0  # how long a step that created a pipeline's parent waits for rival candidates to show


@dataclass(frozen=True)
class TrackingReport:
    ok: bool
    run_id: str | None
    message: str


class Tracker(Protocol):
    run_id: str | None

    @property
    def buffered(self) -> int: ...  # calls held back while MLflow is unreachable

    def log_params(self, params: Mapping[str, Any]) -> None: ...
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...
    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None: ...
    def set_tags(self, tags: Mapping[str, Any]) -> None: ...
    def finish(self, status: str = "FINISHED") -> TrackingReport: ...


class NullTracker:
    """Tracking switched off: every call is accepted and dropped."""

    run_id: str | None = None
    buffered = 0

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        pass

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        pass

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        pass

    def finish(self, status: str = "FINISHED") -> TrackingReport:
        return TrackingReport(True, None, "tracking off")


class MlflowTracker:
    """One MLflow run; calls are buffered while the server is unreachable."""

    def __init__(self, uri: str, experiment: str, run_name: str, tags: Mapping[str, Any] | None = None,
                 parent_run_id: str | None = None, spill_path: Path | None = None,
                 pipeline_run_id: str | None = None) -> None:
        self._setup(uri, experiment, run_name, tags, parent_run_id, spill_path, pipeline_run_id)
        self._submit(("start",))

    def _setup(self, uri: str, experiment: str, run_name: str, tags: Mapping[str, Any] | None,
               parent_run_id: str | None, spill_path: Path | None, pipeline_run_id: str | None) -> None:
        # Fail over to our buffer quickly instead of MLflow's multi-minute default retries.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        from mlflow.tracking import MlflowClient

        self.uri, self.experiment, self.run_name = uri, experiment, run_name
        self.client = MlflowClient(tracking_uri=uri)
        self.spill_path = spill_path
        self.run_id: str | None = None
        self.parent_run_id = parent_run_id
        self.pipeline_run_id = pipeline_run_id  # the parent is then found or created at start
        self._pending: list[tuple[Any, ...]] = []
        self._error: str | None = None
        self._tags = {k: str(v) for k, v in (tags or {}).items()}

    # -- the Tracker protocol -------------------------------------------------
    def log_params(self, params: Mapping[str, Any]) -> None:
        self._submit(("params", {k: str(v)[:MAX_PARAM_LEN] for k, v in params.items()}))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        stamp = int(time.time() * 1000)
        self._submit(("metrics", {k: float(v) for k, v in metrics.items()}, step or 0, stamp))

    def log_metric_rows(self, rows: list[tuple[dict[str, float], int, int]]) -> None:
        """``[(metrics, step, timestamp ms), ...]`` (many steps' metrics) in one request per 1000 values."""
        self._submit(("metric_rows", rows))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._submit(("artifact", str(path), artifact_path))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._submit(("tags", {k: str(v) for k, v in tags.items()}))

    @property
    def buffered(self) -> int:
        """How many calls wait for MLflow to answer again."""
        return len(self._pending)

    def retry_pending(self) -> None:
        """One delivery attempt of the buffered calls (a long step calls this now and then, so metrics
        reach MLflow soon after it is back instead of only at the end)."""
        if not self._pending:
            return
        count = len(self._pending)
        self._flush(attempts=1)
        if not self._pending:
            print(f"warning: tracking: MLflow at {self.uri} is back; {count} buffered calls delivered",
                  file=sys.stderr)
            self._error = None

    def finish(self, status: str = "FINISHED") -> TrackingReport:
        if self._pending:
            self._flush(attempts=3)
        self._submit(("end", status))
        if not self._pending:
            return TrackingReport(True, self.run_id, f"tracked as run {self.run_id} at {self.uri}")
        spilled = self._spill()
        where = f"; saved to {spilled}" if spilled else ""
        return TrackingReport(False, self.run_id,
                              f"MLflow at {self.uri} unreachable ({self._error}); "
                              f"{len(self._pending)} tracking calls not delivered{where}")

    # -- delivery -------------------------------------------------------------
    def _submit(self, op: tuple[Any, ...]) -> None:
        if self._pending:  # keep order: nothing overtakes a buffered call
            self._pending.append(op)
            return
        try:
            self._apply(op)
        except Exception as err:  # noqa: BLE001 - any client failure means "buffer and go on"
            self._fail(err)
            self._pending.append(op)

    def _flush(self, attempts: int) -> None:
        for attempt in range(attempts):
            while self._pending:
                try:
                    self._apply(self._pending[0])
                except Exception as err:  # noqa: BLE001
                    self._error = _short(err)
                    break
                self._pending.pop(0)
            if not self._pending:
                return
            time.sleep(1.0 * (attempt + 1))

    def _fail(self, err: Exception) -> None:
        if self._error is None:
            print(f"warning: tracking: MLflow at {self.uri} failed ({_short(err)}); "
                  "buffering and retrying", file=sys.stderr)
        self._error = _short(err)

    def _apply(self, op: tuple[Any, ...]) -> None:
        from mlflow.entities import Metric, Param, RunTag

        kind = op[0]
        if kind == "start":
            self._start()
        elif kind == "params":
            items = [Param(k, v) for k, v in op[1].items()]
            for i in range(0, len(items), 100):  # MLflow caps a batch at 100 params
                self.client.log_batch(self.run_id, params=items[i:i + 100])
        elif kind == "metrics":
            self.client.log_batch(self.run_id, metrics=[Metric(k, v, op[3], op[2]) for k, v in op[1].items()])
        elif kind == "metric_rows":
            rows = [Metric(k, float(v), stamp, step) for values, step, stamp in op[1] for k, v in values.items()]
            for i in range(0, len(rows), MAX_BATCH_METRICS):
                self.client.log_batch(self.run_id, metrics=rows[i:i + MAX_BATCH_METRICS])
        elif kind == "tags":
            self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in op[1].items()])
        elif kind == "artifact":
            self.client.log_artifact(self.run_id, op[1], op[2])
        elif kind == "end":
            self.client.set_terminated(self.run_id, op[1])
            if self.pipeline_run_id and self.parent_run_id:  # the parent shows its latest step's outcome
                self.client.set_terminated(self.parent_run_id, op[1])

    def _start(self) -> None:
        exp_id = _experiment_id(self.client, self.experiment)
        tags = dict(self._tags)
        if self.pipeline_run_id and not self.parent_run_id:
            parent_tags = {k: v for k, v in tags.items() if k in (Tag.GIT_SHA, Tag.IMAGE)}
            self.parent_run_id = pipeline_parent(self.client, exp_id, self.pipeline_run_id, parent_tags)
        if self.parent_run_id:
            tags[Tag.PARENT] = self.parent_run_id
        self.run_id = self.client.create_run(exp_id, run_name=self.run_name, tags=tags).info.run_id

    def _spill(self) -> Path | None:
        if self.spill_path is None:
            return None
        _write_spill(self.spill_path, self.spill_body())
        return self.spill_path

    def spill_body(self) -> dict[str, Any]:
        """What this tracker could not deliver, and what a replay needs to deliver it (JSON-ready)."""
        return {"format": SPILL_FORMAT, "uri": self.uri, "experiment": self.experiment, "run_name": self.run_name,
                "run_id": self.run_id, "parent_run_id": self.parent_run_id, "pipeline_run_id": self.pipeline_run_id,
                "tags": self._tags, "pending": [list(op) for op in self._pending]}

    @classmethod
    def from_spill(cls, body: Mapping[str, Any], uri: str = "") -> MlflowTracker:
        """The tracker that saved ``body`` (a spill file's content), its undelivered calls pending again."""
        tracker = cls.__new__(cls)  # not __init__: that would open a new run
        tracker._setup(uri or body["uri"], body["experiment"], body["run_name"], body.get("tags"),
                       body.get("parent_run_id"), None, body.get("pipeline_run_id"))
        tracker.run_id = body.get("run_id")  # None when even the run's creation was never delivered
        tracker._pending = [tuple(op) for op in body["pending"]]
        if tracker.run_id and tracker._pending[:1] == [("start",)]:
            tracker._pending.pop(0)  # a run being reopened (a resumed training): it exists already
        return tracker


SPILL_FORMAT = "mindzoo-tracking-spill/1"


def _write_spill(path: Path, body: Mapping[str, Any]) -> None:
    """Written whole or not at all: a replay may read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(body, indent=2))
    partial.replace(path)


def replay_spill(path: Path, uri: str = "", say: Callable[[str], None] = print) -> str:
    """Deliver the calls a step saved in ``path`` while MLflow was unreachable (``mindzoo runs replay``).

    The file goes once everything is delivered; otherwise it is rewritten with what is still pending
    (and the run id, once created), so a later replay neither loses nor repeats a call."""
    from mindzoo.errors import MindzooError

    try:
        body = json.loads(path.read_text())
        if body.get("format", SPILL_FORMAT) != SPILL_FORMAT or not isinstance(body["pending"], list):
            raise ValueError(f"format {body.get('format')!r}")
        tracker = MlflowTracker.from_spill(body, uri)
    except FileNotFoundError:
        raise MindzooError(f"no tracking spill file at {path}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise MindzooError(f"{path} is not a mindzoo tracking spill file ({_short(err)})") from None
    gone = [op for op in tracker._pending if op[0] == "artifact" and not Path(op[1]).is_file()]
    for op in gone:  # the step's temporary files do not outlive its machine
        say(f"warning: artifact {op[1]} is gone; not delivered")
    tracker._pending = [op for op in tracker._pending if op not in gone]
    count = len(tracker._pending)
    tracker._flush(attempts=3)
    if tracker._pending:
        _write_spill(path, tracker.spill_body())
        raise MindzooError(f"MLflow at {tracker.uri} unreachable ({tracker._error}); "
                           f"{len(tracker._pending)} of {count} calls still pending in {path}")
    path.unlink()
    return f"delivered {count} tracking calls to run {tracker.run_id} at {tracker.uri}; removed {path}"


def _experiment_id(client: Any, name: str) -> str:
    """The experiment's id, creating it if needed (steps running side by side may race to create it)."""
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return client.get_experiment_by_name(name).experiment_id


def pipeline_parent(client: Any, experiment_id: str, pipeline_run_id: str, tags: Mapping[str, str]) -> str:
    """The parent run of ``pipeline_run_id`` in this experiment, created by the first step that asks.

    Steps of one pipeline run can ask at the same moment (evaluate and export run in parallel):
    each that finds none creates a candidate. A search right after one's own create may miss a
    rival's create still in flight, so a creator waits ``PARENT_SETTLE_S`` before it looks again;
    all then see the same candidates, keep the same one (oldest, then lowest id) and the others
    delete their own, so the pipeline run keeps one parent.
    """
    found = _parents(client, experiment_id, pipeline_run_id)
    if found:
        parent = found[0].info.run_id
        client.update_run(parent, status="RUNNING")
        return parent
    all_tags = {**tags, Tag.PIPELINE_RUN_ID: pipeline_run_id, Tag.KIND: KIND_PIPELINE}
    mine = client.create_run(experiment_id, run_name=parent_run_name(pipeline_run_id), tags=all_tags).info.run_id
    time.sleep(PARENT_SETTLE_S)
    winner = _parents(client, experiment_id, pipeline_run_id)[0].info.run_id
    if winner != mine:
        client.delete_run(mine)
    return winner


def _parents(client: Any, experiment_id: str, pipeline_run_id: str) -> list[Any]:
    query = f"tags.`{Tag.KIND}` = '{KIND_PIPELINE}' and tags.`{Tag.PIPELINE_RUN_ID}` = '{pipeline_run_id}'"
    runs = client.search_runs([experiment_id], query, max_results=100)
    return sorted(runs, key=lambda run: (run.info.start_time, run.info.run_id))


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:160] if text else ''}"


def create_tracker(uri: str | None, experiment: str, run_name: str, tags: Mapping[str, Any] | None = None,
                   parent_run_id: str | None = None, spill_path: Path | None = None,
                   pipeline_run_id: str | None = None) -> Tracker:
    """An MLflow tracker when a URI is known, else the null tracker."""
    if not uri:
        return NullTracker()
    return MlflowTracker(uri, experiment, run_name, tags, parent_run_id, spill_path, pipeline_run_id)
