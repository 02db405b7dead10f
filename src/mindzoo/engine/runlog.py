"""Tracking for long runs: background delivery, batched per-step metrics, reopening a run after a restart.

Per-step metrics must not slow the training loop (nor load the MLflow server
with a request per step on the same small machine): :class:`AsyncTracker` hands
every call to one delivery thread and returns at once; the thread sends the
metrics that queued up meanwhile as one ``log_batch`` request. A resumed
training run keeps logging into the MLflow run it started, so one run holds the
whole curve: :func:`open_tracking` reopens it by id.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mindzoo.runs.layout import Metric, Tag
from mindzoo.tracking import MAX_BATCH_METRICS, MlflowTracker, Tracker, TrackingReport

__all__ = ["AsyncTracker", "RunTracker", "open_tracking", "run_summary"]

RETRY_EVERY_S = 15.0  # how often calls buffered while MLflow is down are retried during the step
ENV_RETRY_EVERY = "MINDZOO_TRACKING_RETRY_S"  # (overrides RETRY_EVERY_S)
ENV_SPILL_DIR = "MINDZOO_TRACKING_SPILL_DIR"
_NOTHING = object()


class RunTracker(MlflowTracker):
    """An MlflowTracker that can continue an existing run.

    Delivery failures are handled as in the base class: buffered, retried at the end, never raised.
    """

    def __init__(self, *args: Any, reopen: str | None = None, **kwargs: Any) -> None:
        self._reopen = reopen
        super().__init__(*args, **kwargs)

    def spill_body(self) -> dict[str, Any]:
        # The run being reopened is known before reopening it has reached MLflow: a replay reopens it too.
        return {**super().spill_body(), "run_id": self.run_id or self._reopen}

    def _apply(self, op: tuple[Any, ...]) -> None:
        if op[0] == "start" and self._reopen:
            self.run_id = self._reopen
            self.client.update_run(self._reopen, status="RUNNING")
            # A resumed run stays under the parent it was created under.
            self.parent_run_id = self.client.get_run(self._reopen).data.tags.get(Tag.PARENT)
            if self.pipeline_run_id and self.parent_run_id:
                self.client.update_run(self.parent_run_id, status="RUNNING")
        else:
            super()._apply(op)


class AsyncTracker:
    """A Tracker whose calls run on a background thread, in submission order."""

    def __init__(self, inner: Tracker) -> None:
        self.inner = inner
        self._queue: queue.Queue[tuple[str, tuple[Any, ...]] | None] = queue.Queue()
        self._retry_at: float | None = None  # when buffered calls are retried next
        self._thread = threading.Thread(target=self._deliver, name="mindzoo-tracking", daemon=True)
        self._thread.start()

    @property
    def run_id(self) -> str | None:
        return self.inner.run_id

    @property
    def buffered(self) -> int:
        return self.inner.buffered

    def _next(self) -> Any:
        """The next queued call; while the inner tracker holds a buffer, first retry it every RETRY_EVERY_S
        (timed, not on an idle queue: a training loop queues metrics every step)."""
        every = float(os.environ.get(ENV_RETRY_EVERY) or RETRY_EVERY_S)
        while True:
            if not self.inner.buffered:
                self._retry_at = None
                return self._queue.get()
            now = time.monotonic()
            if self._retry_at is None:
                self._retry_at = now + every
            elif now >= self._retry_at:
                self._call("retry_pending")
                self._retry_at = None
                continue
            try:
                return self._queue.get(timeout=self._retry_at - now)
            except queue.Empty:
                continue

    def _deliver(self) -> None:
        item = self._next()
        while item is not None:  # None: finish() was called
            method, args = item
            following: Any = _NOTHING
            if method == "_barrier":
                args[0].set()
            elif method == "log_metrics" and hasattr(self.inner, "log_metric_rows"):
                following = self._send_rows([args])
            else:
                self._call(method, *args)
            item = self._next() if following is _NOTHING else following

    def _send_rows(self, rows: list[tuple[Any, ...]]) -> Any:
        """Send these metric rows and the metric calls queued right behind them as one batch; return the
        first other call taken from the queue (to be handled next), if any."""
        following: Any = _NOTHING
        while len(rows) < MAX_BATCH_METRICS:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None or item[0] != "log_metrics":
                following = item
                break
            rows.append(item[1])
        self._call("log_metric_rows", rows)
        return following

    def _call(self, method: str, *args: Any) -> None:
        try:
            getattr(self.inner, method)(*args)
        except Exception:  # noqa: BLE001 - tracking never stops training; the inner tracker buffers itself
            pass

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._queue.put(("log_params", (dict(params),)))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._queue.put(("log_metrics", (dict(metrics), step or 0, int(time.time() * 1000))))

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self._queue.put(("log_artifact", (path, artifact_path)))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._queue.put(("set_tags", (dict(tags),)))

    def drain(self) -> None:
        """Wait until every call so far has been delivered (or buffered by the inner tracker)."""
        done = threading.Event()
        self._queue.put(("_barrier", (done,)))
        done.wait()

    def finish(self, status: str = "FINISHED") -> TrackingReport:
        self._queue.put(None)
        self._thread.join()
        return self.inner.finish(status)


def open_tracking(ctx: Any, experiment: str, run_name: str, params: Mapping[str, Any], tags: Mapping[str, Any],
                  resume_run_id: str | None) -> AsyncTracker:
    """Start the step's MLflow run — or reopen ``resume_run_id`` — behind an :class:`AsyncTracker`.

    The tracker becomes ``ctx.tracker``, so the step context finishes it whatever happens.
    """
    target = ctx.tracking_target(experiment, tags)
    if not target.uri:
        ctx.tracker = AsyncTracker(ctx.start_tracking(experiment, run_name))  # tracking off: the null tracker
        return ctx.tracker
    inner = RunTracker(target.uri, target.experiment, run_name, target.tags, reopen=resume_run_id,
                       pipeline_run_id=target.pipeline_run_id, spill_path=spill_path(run_name))
    if resume_run_id:
        inner.set_tags({**target.tags, Tag.RESUMED: "true"})
    else:
        inner.log_params(params)
    ctx.tracker = AsyncTracker(inner)
    return ctx.tracker


def spill_path(run_name: str) -> Path:
    """Where tracking calls that never reached MLflow are saved when the step ends first:
    ``$MINDZOO_TRACKING_SPILL_DIR/<run>.json`` (default: the system's temporary folder)."""
    import tempfile

    folder = os.environ.get(ENV_SPILL_DIR) or str(Path(tempfile.gettempdir()) / "mindzoo-tracking-spill")
    return Path(folder) / f"{run_name.replace('/', '_')}.json"


def run_summary(history: list[dict[str, float]], *, earlier_epochs: int, world_size: int, global_batch: int,
                attempt_s: float, best_epoch: int | None) -> dict[str, float]:
    """A training run's throughput and cost, logged once at its end (``summary/*`` in the layout).

    ``history`` holds one record per epoch (``perf/epoch_s``, ``perf/eval_s``, ``perf/step_ms``);
    the first ``earlier_epochs`` were trained by earlier attempts of a resumed run, whose time is
    known only from those records, so wall time = this attempt's ``attempt_s`` (start-up, data
    fetch and graph compile included) + the earlier epochs' train and eval time.
    """
    def spent(records: list[dict[str, float]]) -> float:
        return sum(r.get(Metric.PERF_EPOCH_S, 0.0) + r.get(Metric.PERF_EVAL_S, 0.0) for r in records)

    wall = attempt_s + spent(history[:earlier_epochs])
    out = {Metric.SUMMARY_TRAIN_S: spent(history), Metric.SUMMARY_WALL_S: wall,
           Metric.SUMMARY_DEVICE_HOURS: world_size * wall / 3600.0}
    steps = [r[Metric.PERF_STEP_MS] for r in history if Metric.PERF_STEP_MS in r]
    if steps:  # epochs train the same number of steps (a resumed one fewer): the plain mean is close enough
        step_ms = sum(steps) / len(steps)
        out.update({Metric.SUMMARY_STEP_MS: step_ms, Metric.SUMMARY_IMG_PER_S: global_batch * 1000.0 / step_ms})
    if best_epoch:
        out.update({Metric.SUMMARY_BEST_EPOCH: float(best_epoch),
                    Metric.SUMMARY_TIME_TO_BEST_S: spent([r for r in history if r.get("epoch", 0) <= best_epoch])})
    return out
